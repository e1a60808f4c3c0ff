"""Workers switch to a newly promoted model, and back on rollback, without a restart.

Version 2 is the seed network with its output layer's rows permuted and its class list
permuted the same way: it gives the same label as version 1 for every drawing, while a
mix-up (new weights with the old classes, or the reverse) gives a wrong one. A client
keeps posting real drawings while the alias moves; every answer must be right, and
after at most 10 s every answer must come from the version in production.
"""

from __future__ import annotations

import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import requests
import torch

from ml.network import seed_classes, seed_weights_path
from tests.fixtures.app import ADMIN_TOKEN, CLIENT_KEY, import_version

SWITCH_SECONDS = 10.0
SETTLE_SECONDS = SWITCH_SECONDS + 2.0  # traffic after each move, to see the switch finish
CLIENT_THREADS = 4
DRAWINGS_PER_WORD = 3


@dataclass(frozen=True)
class Answer:
    index: int  # which drawing
    sent: float  # time.monotonic()
    received: float
    status_code: int
    body: dict


def _permuted_seed() -> tuple[bytes, list[str]]:
    """The seed's weights and classes with the outputs reversed (no class keeps its row)."""
    state = torch.load(seed_weights_path(), map_location="cpu", weights_only=True)
    classes = seed_classes()
    perm = list(reversed(range(len(classes))))
    index = torch.tensor(perm)
    state["fc3.0.weight"] = state["fc3.0.weight"][index].clone()
    state["fc3.0.bias"] = state["fc3.0.bias"][index].clone()
    buffer = io.BytesIO()
    torch.save(state, buffer)
    permuted = [classes[i] for i in perm]
    assert all(a != b for a, b in zip(permuted, classes, strict=True))
    return buffer.getvalue(), permuted


def _children(pid: int) -> set[int]:
    """The pool processes of the Celery worker (its direct children; none with solo)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(c) for c in (task / "children").read_text().split()}
    return found


def _recognise(http: requests.Session, base_url: str, drawing: list) -> tuple[int, dict]:
    response = http.post(
        f"{base_url}/v1/recognitions",
        json={"drawing": drawing},
        headers={"X-API-Key": CLIENT_KEY, "Prefer": "wait=10"},
        timeout=30,
    )
    return response.status_code, response.json()


def _move(base_url: str, path: str, reason: str) -> tuple[float, float, dict]:
    """POST an admin move; returns (time sent, time answered, body)."""
    sent = time.monotonic()
    response = requests.post(
        f"{base_url}/v1/admin/models/{path}",
        json={"reason": reason},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=30,
    )
    answered = time.monotonic()
    assert response.status_code == 200, response.text
    return sent, answered, response.json()


def test_workers_switch_models_without_restart_or_mix_up(
    stack, settings, seed_version, sample_drawings
):
    weights, classes = _permuted_seed()
    v2 = import_version(settings, weights, classes, source="seed, outputs reversed")
    v1 = seed_version
    stack.start_worker()
    stack.start_api()
    drawings = [d["drawing"] for ds in sample_drawings.values() for d in ds[:DRAWINGS_PER_WORD]]

    # What version 1 says of each drawing: the reference for every later answer.
    def reference(index: int) -> dict:
        with requests.Session() as http:
            status, body = _recognise(http, stack.base_url, drawings[index])
        assert status == 200 and body["status"] == "done", body
        assert body["model_version"] == v1
        return body["prediction"]

    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        expected = list(pool.map(reference, range(len(drawings))))
    worker_pid = stack.procs["worker"].pid  # answering, so its pool is up
    pool_before = {worker_pid} | _children(worker_pid)

    answers: list[Answer] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def client(offset: int) -> None:
        i = offset
        try:
            with requests.Session() as http:
                while not stop.is_set():
                    index = i % len(drawings)
                    sent = time.monotonic()
                    status, body = _recognise(http, stack.base_url, drawings[index])
                    answers.append(Answer(index, sent, time.monotonic(), status, body))
                    i += CLIENT_THREADS
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENT_THREADS)]
    for t in threads:
        t.start()
    try:
        time.sleep(2.0)
        promote_sent, promoted, body = _move(stack.base_url, f"{v2}/promote", "hot reload test")
        assert (body["from"], body["to"]) == (v1, v2)
        time.sleep(SETTLE_SECONDS)
        rollback_sent, rolled_back, body = _move(stack.base_url, "rollback", "and back")
        assert (body["from"], body["to"]) == (v2, v1)
        time.sleep(SETTLE_SECONDS)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert errors == []

    # Every request succeeded, and no answer mixed one version's weights with the other's
    # classes: each says what version 1 said of the same drawing.
    assert len(answers) > 100
    failed = [a for a in answers if a.status_code != 200 or a.body.get("status") != "done"]
    assert failed == []
    for a in answers:
        prediction = a.body["prediction"]
        assert prediction["label"] == expected[a.index]["label"], a
        top = [g["label"] for g in prediction["top"]]
        assert top == [g["label"] for g in expected[a.index]["top"]], a
        assert abs(prediction["confidence"] - expected[a.index]["confidence"]) < 1e-4

    def version(a: Answer) -> int:
        return int(a.body["model_version"])

    by_v2 = [a for a in answers if version(a) == v2]
    assert by_v2, "no answer came from the promoted version"
    # Version 2 answered only while it was in production (plus the switch-back window).
    assert all(promote_sent < a.received < rolled_back + SWITCH_SECONDS for a in by_v2)
    for a in answers:
        if a.received < promote_sent:
            assert version(a) == v1, a
        elif promoted + SWITCH_SECONDS < a.received < rollback_sent:
            assert version(a) == v2, a
        elif a.received > rolled_back + SWITCH_SECONDS:
            assert version(a) == v1, a
    assert any(a.received > rolled_back + SWITCH_SECONDS for a in answers)
    assert any(promoted + SWITCH_SECONDS < a.received < rollback_sent for a in answers)

    # The same processes served both versions: nothing was restarted.
    assert stack.procs["worker"].poll() is None
    assert {worker_pid} | _children(worker_pid) == pool_before

    first_v2 = min(a.received for a in by_v2)
    last_v1 = max(a.received for a in answers if version(a) == v1 and a.received < rollback_sent)
    back = [a for a in answers if version(a) == v1 and a.received > rollback_sent]
    first_back = min(a.received for a in back)
    last_v2 = max(a.received for a in by_v2)
    print(
        f"{len(answers)} answers; promote: first answer by v{v2} {first_v2 - promoted:+.2f} s "
        f"after the move, last by v{v1} {last_v1 - promoted:+.2f} s; rollback: first by "
        f"v{v1} {first_back - rolled_back:+.2f} s, last by v{v2} {last_v2 - rolled_back:+.2f} s"
    )
