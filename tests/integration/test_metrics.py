"""`/metrics` and the workers check of `/readyz`, in-process against real Postgres and Redis
(the real gunicorn + Celery processes: tests/e2e/test_metrics.py)."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from dataclasses import replace

import pytest

from db.models import TrainingRun
from tests.fixtures.app import CLIENT_KEY, assert_error, recognize
from tests.fixtures.metrics import Samples, parse, value
from tests.fixtures.players import as_player, secret_for
from tests.fixtures.proxy import TcpProxy
from workers.metrics import Heartbeat, observe_batch

HEADERS = {"X-API-Key": CLIENT_KEY}
PLAYER = "player-metrics-7"


def scrape(client, headers=None) -> Samples:
    response = client.get("/metrics", headers=headers or {})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/plain"
    return parse(response.get_data(as_text=True))


def _post(client, drawing) -> dict:
    body = {
        "drawing": drawing,
        "word": "apple",
        "player_id": PLAYER,
        "consent": {"store": True, "train": True, "version": "2026-11"},
    }
    headers = {**HEADERS, **as_player(secret_for(client, PLAYER))}
    response = client.post("/v1/recognitions", json=body, headers=headers)
    assert response.status_code == 202, response.get_data(as_text=True)
    return response.get_json()


def test_requests_by_route_and_status_queue_depth_and_oldest_queued(
    client, seed_version, sample_drawings
):
    before = scrape(client)
    started = time.monotonic()
    ids = [_post(client, d["drawing"])["id"] for d in sample_drawings["apple"][:3]]
    assert client.get(f"/v1/recognitions/{ids[0]}", headers=HEADERS).status_code == 200
    assert client.get("/v1/recognitions", headers=HEADERS).status_code in (404, 405)
    assert client.get("/no/such/path/player-metrics-7").status_code == 404
    text = client.get("/metrics").get_data(as_text=True)
    after = parse(text)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    post = {"method": "POST", "route": "/v1/recognitions"}
    assert delta("doodle_http_requests_total", **post, status="202") == 3
    assert delta("doodle_http_request_duration_seconds_count", **post) == 3
    assert delta("doodle_http_request_duration_seconds_bucket", **post, le="+Inf") == 3
    read = {"method": "GET", "route": "/v1/recognitions/<recognition_id>"}
    assert delta("doodle_http_requests_total", **read, status="200") == 1
    # The url rule, never the path: no id and no player appears anywhere.
    assert ids[0] not in text and PLAYER not in text
    assert delta("doodle_http_requests_total", method="GET", route="unmatched", status="404") == 1
    # The scrape before this one counted itself.
    assert delta("doodle_http_requests_total", method="GET", route="/metrics", status="200") == 1

    assert value(after, "doodle_dependency_up", dependency="redis") == 1
    assert value(after, "doodle_dependency_up", dependency="postgres") == 1
    # Nothing consumes the queue in this test: the three wait there, and in Postgres.
    assert value(after, "doodle_queue_depth", queue="recognitions") == 3
    assert value(after, "doodle_queue_depth", queue="guesses") == 0
    oldest = value(after, "doodle_oldest_queued_seconds")
    assert 0 < oldest <= time.monotonic() - started + 1
    assert value(after, "doodle_production_model_version") == seed_version
    assert value(after, "doodle_workers_alive") == 0


def test_batches_are_observed_and_the_oldest_queued_clears(
    client, worker_runtime, seed_version, sample_drawings
):
    before = scrape(client)
    ids = [_post(client, d["drawing"])["id"] for d in sample_drawings["star"][:2]]
    for rid in ids:  # two batches of one, through the worker's own path
        assert recognize(worker_runtime, uuid.UUID(rid)) == "done"
    after = scrape(client)
    task = {"task": "recognize"}
    assert (
        value(after, "doodle_batch_size_count", **task)
        - value(before, "doodle_batch_size_count", **task)
        == 2
    )
    assert (
        value(after, "doodle_batch_size_sum", **task)
        - value(before, "doodle_batch_size_sum", **task)
        == 2
    )
    for name in ("doodle_rasterise_seconds_count", "doodle_inference_seconds_count"):
        assert value(after, name, **task) - value(before, name, **task) == 2
    assert value(after, "doodle_inference_seconds_sum", **task) > value(
        before, "doodle_inference_seconds_sum", **task
    )
    assert value(after, "doodle_oldest_queued_seconds") == 0


def test_flywheel_last_cycle_from_the_training_runs(client, seed_version, db_session_factory):
    assert value(scrape(client), "doodle_flywheel_last_run_status", status="promoted") == 0
    finished = dt.datetime(2026, 11, 24, 3, 0, 12, tzinfo=dt.UTC)
    with db_session_factory.begin() as s:
        s.add(
            TrainingRun(
                parent_version_id=seed_version,
                status="rejected",
                report={"golden_top1": {"candidate": 0.5, "production": 0.8}},
                finished_at=finished - dt.timedelta(days=1),
            )
        )
        s.add(
            TrainingRun(
                parent_version_id=seed_version,
                status="promoted",
                report={"golden_top1": {"candidate": 0.91, "production": 0.9}},
                finished_at=finished,
            )
        )
        s.add(TrainingRun(parent_version_id=seed_version, status="running"))  # not finished
    samples = scrape(client)
    assert value(samples, "doodle_flywheel_last_run_status", status="promoted") == 1
    assert value(samples, "doodle_flywheel_last_run_status", status="rejected") == 0
    assert value(samples, "doodle_flywheel_last_run_finished_timestamp_seconds") == (
        finished.timestamp()
    )
    assert value(samples, "doodle_flywheel_last_run_golden_top1", model="candidate") == 0.91
    assert value(samples, "doodle_flywheel_last_run_golden_top1", model="production") == 0.9


def test_a_scrape_survives_postgres_and_redis_down(settings, seed_version):
    """Postgres cut mid-life (its connections closed) and Redis unreachable: the scrape
    answers 200 with what it has and says which dependency is down."""
    from api import create_app

    with TcpProxy(settings.db_url) as proxy:
        down = replace(settings, database_url=proxy.url, redis_url="redis://127.0.0.1:1/0")
        app = create_app(down)
        try:
            client = app.test_client()
            up = scrape(client)
            assert value(up, "doodle_dependency_up", dependency="postgres") == 1
            assert value(up, "doodle_dependency_up", dependency="redis") == 0
            assert ("doodle_queue_depth", frozenset({("queue", "recognitions")})) not in up
            proxy.stop()
            samples = scrape(client)
            assert value(samples, "doodle_dependency_up", dependency="postgres") == 0
            assert ("doodle_oldest_queued_seconds", frozenset()) not in samples
            # The process's own counters are still there (this scrape's predecessor).
            counted = value(
                samples, "doodle_http_requests_total", method="GET", route="/metrics", status="200"
            )
            assert counted >= 1
            proxy.start()
            again = scrape(client)
            assert value(again, "doodle_dependency_up", dependency="postgres") == 1
        finally:
            app.extensions["doodle"].close()


def test_metrics_token(settings, seed_version):
    from api import create_app

    app = create_app(replace(settings, metrics_token="s3cret-metrics"))
    try:
        client = app.test_client()
        assert_error(client.get("/metrics"), 401, "unauthorized")
        assert_error(client.get("/metrics", headers={"Authorization": "Bearer nope"}), 401)
        samples = scrape(client, {"Authorization": "Bearer s3cret-metrics"})
        assert value(samples, "doodle_dependency_up", dependency="postgres") == 1
    finally:
        app.extensions["doodle"].close()


@pytest.fixture
def relaxed_client(settings, seed_version):
    """An API that is ready without workers (DOODLE_READY_MIN_WORKERS=0)."""
    from api import create_app

    app = create_app(replace(settings, ready_min_workers=0))
    yield app.test_client()
    app.extensions["doodle"].close()


@pytest.fixture
def strict_client(settings, seed_version):
    """An API that is ready only with live workers (the default, DOODLE_READY_MIN_WORKERS=1)."""
    from api import create_app

    app = create_app(replace(settings, worker_heartbeat_seconds=0.2))
    yield app.test_client()
    app.extensions["doodle"].close()


def test_readiness_reports_workers_alive(
    relaxed_client, strict_client, settings, redis_client, seed_version
):
    """Worker processes by their heartbeats; the queues they consume: test_readiness.py."""
    relaxed = relaxed_client.get("/readyz")
    assert relaxed.status_code == 200
    workers = relaxed.get_json()["checks"]["workers"]
    assert (workers["ok"], workers["alive"], workers["required"]) == (True, 0, 0)

    response = strict_client.get("/readyz")
    assert response.status_code == 503
    workers = response.get_json()["checks"]["workers"]
    assert (workers["ok"], workers["alive"], workers["required"]) == (False, 0, 1)

    observe_batch("recognize", 1, 0.001, 0.002, seed_version)  # what the worker answers with
    heartbeat = Heartbeat(replace(settings, worker_heartbeat_seconds=0.2))
    heartbeat.start()
    try:
        deadline = time.monotonic() + 5
        while not redis_client.exists(heartbeat.key) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert json.loads(redis_client.get(heartbeat.key)) == {"model_version": seed_version}
        assert 0 < redis_client.pttl(heartbeat.key) <= 600  # three beats of 0.2 s
        # A process heartbeat alone takes no queue: still not ready, but counted.
        response = strict_client.get("/readyz")
        assert response.status_code == 503, response.get_json()
        assert response.get_json()["checks"]["workers"]["alive"] == 1
        assert value(scrape(strict_client), "doodle_workers_alive") == 1
        assert (
            value(
                scrape(strict_client),
                "doodle_workers_model_version",
                model_version=str(seed_version),
            )
            == 1
        )
    finally:
        heartbeat.stop()
    # A graceful stop takes the key away at once; a killed worker's expires (e2e test).
    assert not redis_client.exists(heartbeat.key)
    assert strict_client.get("/readyz").get_json()["checks"]["workers"]["alive"] == 0
