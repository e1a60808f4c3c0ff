"""`/metrics` and `/readyz` on the real processes: gunicorn with two workers and a Celery
worker, sharing the metrics folder under DOODLE_HOME. A worker killed stops counting as
alive once its heartbeat expires; the counters it wrote stay."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.e2e.conftest import Stack
from tests.fixtures.app import CLIENT_KEY
from tests.fixtures.metrics import Samples, parse, value

DOODLES = 8
HEARTBEAT_SECONDS = "0.5"  # a killed worker is gone from the count after 1.5 s


def _scrape(stack: Stack) -> Samples:
    response = requests.get(f"{stack.base_url}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    return parse(response.text)


def _eventually(check: Callable[[], bool], what: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"not in {seconds}s: {what}"
        time.sleep(0.1)


def _recognise(stack: Stack, drawing: list) -> dict:
    response = requests.post(
        f"{stack.base_url}/v1/recognitions",
        json={"drawing": drawing},
        headers={"X-API-Key": CLIENT_KEY, "Prefer": "wait=10"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_metrics_across_gunicorn_and_celery_and_workers_alive(
    stack: Stack, seed_version: int, sample_drawings
):
    stack.start_worker(DOODLE_WORKER_HEARTBEAT_SECONDS=HEARTBEAT_SECONDS)
    stack.wait_worker_ready()
    # Ready only with a live worker on each batch queue (the default; this worker takes
    # them all): start_api waits for /readyz to answer 200.
    stack.start_api()
    ready = requests.get(f"{stack.base_url}/readyz", timeout=5).json()
    assert ready["checks"]["workers"] == {
        "ok": True,
        "alive": 1,
        "required": 1,
        "queues": {"recognitions": 1, "guesses": 1},
    }

    drawings = [d["drawing"] for word in ("cup", "hat") for d in sample_drawings[word][:4]]
    assert len(drawings) == DOODLES
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda d: _recognise(stack, d), drawings))
    assert all(a["status"] == "done" for a in answers)
    # Each batch of b doodles answered b of them, each saying `batch: b`.
    batches = round(sum(1 / a["timings"]["batch"] for a in answers))

    _eventually(
        lambda: (
            value(_scrape(stack), "doodle_workers_model_version", model_version=str(seed_version))
            == 1
        ),
        "the worker's heartbeat names the model version it answered with",
    )
    samples = _scrape(stack)
    post = {"method": "POST", "route": "/v1/recognitions"}
    assert value(samples, "doodle_http_requests_total", **post, status="200") == DOODLES
    assert value(samples, "doodle_http_request_duration_seconds_count", **post) == DOODLES
    task = {"task": "recognize"}
    assert value(samples, "doodle_batch_size_sum", **task) == DOODLES
    assert value(samples, "doodle_batch_size_count", **task) == batches
    assert value(samples, "doodle_rasterise_seconds_count", **task) == batches
    assert value(samples, "doodle_inference_seconds_count", **task) == batches
    # The histograms hold the timings the answers report (each batch's forward pass once).
    inference_s = sum(a["timings"]["inference_ms"] / a["timings"]["batch"] for a in answers) / 1000
    assert value(samples, "doodle_inference_seconds_sum", **task) == pytest.approx(
        inference_s, rel=0.01, abs=0.001
    )
    assert value(samples, "doodle_workers_alive") == 1
    assert value(samples, "doodle_production_model_version") == seed_version
    assert value(samples, "doodle_queue_depth", queue="recognitions") == 0
    assert value(samples, "doodle_oldest_queued_seconds") == 0
    assert value(samples, "doodle_dependency_up", dependency="postgres") == 1
    assert value(samples, "doodle_dependency_up", dependency="redis") == 1

    stack.kill("worker")  # SIGKILL: no goodbye, the heartbeat key just expires
    _eventually(
        lambda: requests.get(f"{stack.base_url}/readyz", timeout=5).status_code == 503,
        "readiness fails with no worker alive",
    )
    ready = requests.get(f"{stack.base_url}/readyz", timeout=5).json()
    workers = ready["checks"]["workers"]
    assert (workers["ok"], workers["alive"], workers["queues"]) == (
        False,
        0,
        {"recognitions": 0, "guesses": 0},
    )
    samples = _scrape(stack)
    assert value(samples, "doodle_workers_alive") == 0
    # What the dead worker counted is still counted.
    assert value(samples, "doodle_batch_size_sum", **task) == DOODLES
