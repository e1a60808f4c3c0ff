"""Players posting drawings through the API, as a game client does: `POST /v1/recognitions`
with the client's key, the strokes, the prompt word, the player and consent to store and train;
`Prefer: wait` for the answer, else the `Location` polled until the doodle is done or failed.

http.client, not urllib: no *_proxy variable may stand between us and 127.0.0.1.
"""

from __future__ import annotations

import http.client
import json
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from benchkit import CLIENT_KEY
from benchkit.product_learning_data import Post, recognition_body

WAIT_SECONDS = 10  # the API's longest `Prefer: wait`
POLL_SECONDS = 0.2
DONE_WITHIN_SECONDS = 120.0
FINISHED = ("done", "failed")


class Client:
    def __init__(self, base_url: str, key: str = CLIENT_KEY) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.key = key
        self.players: dict[str, tuple[str, str]] = {}  # simulated name -> (id, secret)

    def _request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=WAIT_SECONDS + 20)
        try:
            conn.request(
                method, path, body=body, headers={"X-API-Key": self.key, **(headers or {})}
            )
            response = conn.getresponse()
            data = response.read()
            return response.status, dict(response.getheaders()), json.loads(data or b"null")
        finally:
            conn.close()

    def player(self, name: str) -> tuple[str, str]:
        """The id and secret the product issued the simulated player `name` (asked once, as
        a game does when a player first plays). A product from before server-issued ids
        (--product of an older checkout) takes the name as the id, and no secret."""
        if name not in self.players:
            status, _, doc = self._request("POST", "/v1/players")
            if status in (404, 405):
                self.players[name] = (name, "")
            elif status != 201:
                raise RuntimeError(f"POST /v1/players answered {status}: {doc}")
            else:
                self.players[name] = (doc["player_id"], doc["player_secret"])
        return self.players[name]

    def post(self, post: Post) -> dict[str, Any]:
        """One drawing, answered: the recognition document once done or failed."""
        player_id, secret = self.player(post.player)
        body = json.dumps(recognition_body(post, player_id), separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "Prefer": f"wait={WAIT_SECONDS}",
            **({"X-Player-Secret": secret} if secret else {}),
        }
        for _attempt in range(20):
            status, head, doc = self._request("POST", "/v1/recognitions", body, headers)
            if status == 429:  # the client key's rate limit: wait as told
                time.sleep(float(head.get("Retry-After", "1")))
                continue
            if status not in (200, 202):
                raise RuntimeError(f"POST /v1/recognitions answered {status}: {doc}")
            break
        else:
            raise RuntimeError("POST /v1/recognitions: rate-limited 20 times in a row")
        location = head.get("Location") or f"/v1/recognitions/{doc['id']}"
        deadline = time.monotonic() + DONE_WITHIN_SECONDS
        while doc["status"] not in FINISHED:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{location} not done after {DONE_WITHIN_SECONDS:.0f}s: {doc}")
            time.sleep(POLL_SECONDS)
            status, _, doc = self._request("GET", urlsplit(location).path)
            if status != 200:
                raise RuntimeError(f"GET {location} answered {status}: {doc}")
        return dict(doc)


def post_all(base_url: str, items: Sequence[Post], concurrency: int = 4) -> dict[str, Any]:
    """Post every drawing (`concurrency` clients at once); counts of how they ended and the
    wall time. Each player's drawings go in order, as one player draws one after another."""
    client = Client(base_url)
    by_player: dict[str, list[Post]] = {}
    for item in items:
        by_player.setdefault(item.player, []).append(item)

    def play(drawings: list[Post]) -> list[dict[str, Any]]:
        return [client.post(d) for d in drawings]

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        answers = [a for done in pool.map(play, by_player.values()) for a in done]
    statuses = Counter(a["status"] for a in answers)
    return {
        "posted": len(answers),
        "players": len(by_player),
        "statuses": dict(statuses),
        "stored": sum(bool(a.get("stored")) for a in answers),
        "seconds": round(time.perf_counter() - started, 2),
    }
