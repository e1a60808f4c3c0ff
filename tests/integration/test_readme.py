"""The README's examples, run: what it tells a newcomer to type gives what it shows.

The request bodies are read out of the README itself (the `-d '...'` of each curl line),
sent to the real API, and the answers compared with the figures the README prints.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from dataclasses import replace

import pytest

from core.settings import PROJECT_ROOT, Settings
from tests.fixtures.app import CLIENT_KEY, recognize
from tests.fixtures.players import as_player, secret_for
from tests.integration.test_guesses import _serve_one_guess

README = (PROJECT_ROOT / "README.md").read_text()
HEADERS = {"X-API-Key": CLIENT_KEY}


def _curl_body(path: str) -> dict:
    """The JSON body of the README's curl line that posts to `path`."""
    match = re.search(re.escape(path) + r"[^`]*?-d '(\{.*?\})'", README, re.DOTALL)
    assert match, f"no curl example posting to {path} in the README"
    return json.loads(match.group(1))


def _pairs(text: str) -> list[tuple[str, float]]:
    """The ("label", confidence) pairs written in `text`."""
    pairs = re.findall(r'"label": "([a-z ]+)",\s+"confidence":\s+([0-9.]+)', text)
    assert pairs, f"no prediction shown in {text[:80]!r}..."
    return [(label, float(confidence)) for label, confidence in pairs]


def _shown(after: str) -> list[tuple[str, float]]:
    """The pairs the README shows in the code block after the text `after`."""
    start = README.index(after)
    return _pairs(README[start : README.index("```", README.index("```", start) + 3)])


def _close(answer: list[tuple[str, float]], shown: list[tuple[str, float]], places: int):
    rounded = [(label, round(confidence, places)) for label, confidence in answer]
    assert rounded[: len(shown)] == shown


def test_the_recognition_example_answers_what_the_readme_shows(
    client, worker_runtime, seed_version
):
    body = _curl_body("/v1/recognitions")
    assert body["word"] == "star" and body["consent"]["store"] is True
    # The example's player, as POST /v1/players would have made them: their secret goes
    # with the doodle (X-Player-Secret).
    player = as_player(secret_for(client, body["player_id"])) if "player_id" in body else {}
    posted = client.post("/v1/recognitions", json=body, headers={**HEADERS, **player})
    assert posted.status_code == 202, posted.get_data(as_text=True)
    rid = posted.get_json()["id"]
    assert recognize(worker_runtime, uuid.UUID(rid)) == "done"
    document = client.get(f"/v1/recognitions/{rid}", headers=HEADERS).get_json()
    prediction = document["prediction"]
    # The README shows the answer with `top` three, rounded to three places.
    answer = [(t["label"], t["confidence"]) for t in prediction["top"]]
    shown = _shown('"status": "done", "word": "star"')
    assert shown[0] == (prediction["label"], round(prediction["confidence"], 3))
    _close(answer, shown[1:], 3)
    assert document["stored"] is True and document["model_version"] == seed_version


def test_the_guess_example_answers_what_the_readme_shows(
    client, redis_client, worker_runtime, seed_version
):
    body = _curl_body("/v1/guesses")
    thread = _serve_one_guess(redis_client, worker_runtime)
    answered = client.post("/v1/guesses", json=body, headers=HEADERS)
    thread.join()
    assert answered.status_code == 200, answered.get_data(as_text=True)
    guesses = [(g["label"], g["confidence"]) for g in answered.get_json()["guesses"]]
    shown = _pairs(README[README.index("The first five points of that star") :][:250])
    _close(guesses, shown, 2)


def test_the_eval_example_prints_what_the_readme_shows(settings: Settings, seed_version):
    command = re.search(r"\.venv/bin/doodle eval (--drawings \S+)", README)
    assert command, "no doodle eval example in the README"
    printed = re.search(r"prints `(\{.*?), \"per_word\": …\}`", README)
    assert printed, "the README does not show what doodle eval prints"
    shown = json.loads(printed.group(1) + "}")
    env = {
        **os.environ,
        "DATABASE_URL": settings.db_url,
        "REDIS_URL": settings.broker_url,
        "STORAGE_URL": settings.object_store_url,
        "DOODLE_HOME": str(settings.home),
    }
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "eval", *command.group(1).split()],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for key in ("n", "top1", "top3", "map3"):
        assert round(result[key], 2) == shown[key], (key, result[key])


@pytest.mark.parametrize("path", ["/readyz", "/healthz", "/v1/words"])
def test_the_service_routes_it_names_answer(settings, seed_version, path):
    from api import create_app

    # No worker runs in this process: readiness judges the dependencies alone here (with
    # workers: tests/integration/test_readiness.py).
    app = create_app(replace(settings, ready_min_workers=0))
    try:
        response = app.test_client().get(path, headers=HEADERS)
    finally:
        app.extensions["doodle"].close()
    assert response.status_code == 200, response.get_data(as_text=True)
