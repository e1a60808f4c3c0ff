"""`GET /metrics` in Prometheus text format.

Three sources, merged at each scrape:
- counters every process keeps (HTTP requests here, batch timings in workers.metrics),
  read from prometheus_client's multiprocess files of all processes (core.metrics);
- gauges read now from Redis (queue depths, workers alive by their heartbeats) and from
  Postgres (oldest queued doodle, production model, the flywheel's last cycle). A dependency
  that is down leaves its gauges out and shows as `doodle_dependency_up{...} 0`; the scrape
  itself still answers 200.

No label holds personal data: routes are Flask's url rules (`/v1/recognitions/<recognition_id>`),
never raw paths. The access log (logger `doodle.access`, one line a request) names them the
same way. `DOODLE_METRICS_TOKEN`, when set, must come as `Authorization: Bearer`.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import time
from collections.abc import Iterable, Iterator
from typing import Any

import redis
from flask import Blueprint, Flask, Response, g, request
from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy import select, text

from api.errors import Unauthorized
from api.resources import Resources, resources
from core.metrics import HEARTBEAT_PREFIX, MULTIPROC_ENV, metric_files
from core.tasks import ALL_QUEUES
from db import registry
from db.models import TrainingRun
from db.registry import Alias

log = logging.getLogger(__name__)

bp = Blueprint("metrics", __name__)

REQUESTS = Counter(
    "doodle_http_requests",
    "HTTP requests answered, by method, route (the url rule) and status.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "doodle_http_request_duration_seconds",
    "Time to answer an HTTP request (a Prefer: wait included), by method and route.",
    ["method", "route"],
)
access_log = logging.getLogger("doodle.access")
UNMATCHED = "unmatched"  # no route: 404s and 405s, whatever their path
FLYWHEEL_STATUSES = ("promoted", "rejected", "skipped", "failed", "abandoned")


def register_metrics(app: Flask) -> None:
    """Time every request (register first, so the clock starts before other hooks)."""
    app.before_request(_start_clock)
    app.after_request(_count)
    app.register_blueprint(bp)


def _start_clock() -> None:
    g.metrics_started = time.perf_counter()


def _count(response: Response) -> Response:
    rule = request.url_rule
    route = rule.rule if rule is not None else UNMATCHED
    REQUESTS.labels(request.method, route, str(response.status_code)).inc()
    started = g.get("metrics_started")
    if started is not None:
        elapsed = time.perf_counter() - started
        LATENCY.labels(request.method, route).observe(elapsed)
        # The access log names the route, never the path: paths hold player ids.
        access_log.info(
            "%s %s %s %.1f ms", request.method, route, response.status_code, elapsed * 1000
        )
    return response


@bp.get("/metrics")
def metrics() -> Response:
    res = resources()
    token = res.settings.metrics_token
    if token is not None:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise Unauthorized("/metrics needs Authorization: Bearer <DOODLE_METRICS_TOKEN>")
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(_ProcessCounters(res))
    scrape.register(_LiveGauges(res))
    return Response(generate_latest(scrape), mimetype=CONTENT_TYPE_LATEST)


class _ProcessCounters(Collector):
    """Counters and histograms of every process (or this one's, outside multiprocess mode,
    as in tests that run the app in-process)."""

    def __init__(self, res: Resources) -> None:
        self._res = res

    def collect(self) -> Iterable[Metric]:
        if os.environ.get(MULTIPROC_ENV):
            return MultiProcessCollector.merge(
                [str(f) for f in metric_files(self._res.settings)], accumulate=True
            )
        return REGISTRY.collect()


def workers_alive(client: redis.Redis) -> list[dict[str, Any]]:
    """The heartbeat documents of the worker processes alive now (workers.metrics)."""
    keys = list(client.scan_iter(match=f"{HEARTBEAT_PREFIX}*", count=1000))
    if not keys:
        return []
    return [json.loads(raw) for raw in client.mget(keys) if raw is not None]


class _LiveGauges(Collector):
    def __init__(self, res: Resources) -> None:
        self._res = res

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "doodle_dependency_up",
            "1 if the dependency answered this scrape, else 0.",
            labels=["dependency"],
        )
        for name, read in (("redis", self._redis), ("postgres", self._postgres)):
            try:
                gauges = list(read())
            except Exception as exc:  # a scrape reports what it can; it never fails
                log.warning("metrics: %s unavailable: %s", name, type(exc).__name__)
                up.add_metric([name], 0)
                continue
            up.add_metric([name], 1)
            yield from gauges
        yield up

    def _redis(self) -> Iterator[Metric]:
        client = self._res.redis
        pipe = client.pipeline(transaction=False)
        for queue in ALL_QUEUES:
            pipe.llen(queue)
        depths = pipe.execute()
        depth = GaugeMetricFamily(
            "doodle_queue_depth", "Messages waiting in a queue of the broker.", labels=["queue"]
        )
        for queue, n in zip(ALL_QUEUES, depths, strict=True):
            depth.add_metric([queue], n)
        yield depth

        beats = workers_alive(client)
        yield GaugeMetricFamily(
            "doodle_workers_alive",
            "Worker processes whose heartbeat is fresh.",
            value=len(beats),
        )
        by_version: dict[str, int] = {}
        for beat in beats:
            version = beat.get("model_version")
            key = "none" if version is None else str(version)
            by_version[key] = by_version.get(key, 0) + 1
        serving = GaugeMetricFamily(
            "doodle_workers_model_version",
            "Worker processes alive by the model version they last answered with "
            "('none': not yet).",
            labels=["model_version"],
        )
        for version, n in sorted(by_version.items()):
            serving.add_metric([version], n)
        yield serving

    def _postgres(self) -> Iterator[Metric]:
        with self._res.sessions() as s:
            # One row of ix_recognitions_status_created_at, however long the backlog.
            oldest = s.execute(
                text(
                    "SELECT extract(epoch FROM now() - created_at) FROM recognitions"
                    " WHERE status = 'queued' ORDER BY created_at LIMIT 1"
                )
            ).scalar()
            production = registry.get_alias(s, Alias.PRODUCTION)
            last_run = s.scalars(
                select(TrainingRun)
                .where(TrainingRun.finished_at.is_not(None))
                .order_by(TrainingRun.id.desc())
                .limit(1)
            ).first()
            yield GaugeMetricFamily(
                "doodle_oldest_queued_seconds",
                "Age of the oldest doodle still queued (0 when none is).",
                value=max(float(oldest or 0.0), 0.0),
            )
            if production is not None:
                yield GaugeMetricFamily(
                    "doodle_production_model_version",
                    "The model version the production alias points at.",
                    value=production.id,
                )
            if last_run is not None:
                yield from _flywheel(last_run)


def _flywheel(run: TrainingRun) -> Iterator[Metric]:
    assert run.finished_at is not None
    yield GaugeMetricFamily(
        "doodle_flywheel_last_run_finished_timestamp_seconds",
        "When the flywheel's last finished cycle ended (Unix time).",
        value=run.finished_at.timestamp(),
    )
    status = GaugeMetricFamily(
        "doodle_flywheel_last_run_status",
        "1 for the outcome of the flywheel's last finished cycle.",
        labels=["status"],
    )
    for name in FLYWHEEL_STATUSES:
        status.add_metric([name], 1.0 if run.status == name else 0.0)
    yield status
    top1 = (run.report or {}).get("golden_top1") or {}
    if top1:
        golden = GaugeMetricFamily(
            "doodle_flywheel_last_run_golden_top1",
            "Golden-set top-1 accuracy of the candidate and of production in the last cycle.",
            labels=["model"],
        )
        for model, value in sorted(top1.items()):
            if isinstance(value, int | float):
                golden.add_metric([model], float(value))
        yield golden
