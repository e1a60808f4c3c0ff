"""`doodle api`, `doodle worker`, `doodle beat`: the long-running processes."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from cli.context import resolved_settings
from core.metrics import use_metrics_dir
from core.settings import Settings
from core.tasks import ALL_QUEUES, BATCH_QUEUES, IDLE_QUEUE

# How long a thread may hold the GIL while another waits for it: Python's 5 ms default made a
# request (a live guess above all) wait behind another thread's CPU work in the same
# process. At 0.5 ms in the API and the workers, live guesses beside recognitions at c4:
# p99 19.8 against 25.6 ms, and recognitions alone 292-308 against 203-280 /s
# (scripts/bench.py --scenario guesses --services embedded --concurrency 4 --duration 15).
GIL_TURN_SECONDS = 0.0005


def _short_gil_turns() -> None:
    sys.setswitchinterval(GIL_TURN_SECONDS)  # forked processes inherit it


def _gunicorn(app: Any, options: dict[str, Any]) -> None:
    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return app

    Server().run()


def _worker_class(settings: Settings) -> type[Any]:
    """gthread that gives a connection a thread only once its request is read, within the
    settings' deadlines (slow clients never hold the threads: cli.http_worker)."""
    from cli.http_worker import BufferedThreadWorker

    if settings.api_header_timeout <= 0 or settings.api_body_timeout <= 0:
        raise click.UsageError(
            "DOODLE_API_HEADER_TIMEOUT and DOODLE_API_BODY_TIMEOUT must be positive seconds"
        )
    if settings.api_connections_per_address < 0:
        raise click.UsageError("DOODLE_API_CONNECTIONS_PER_ADDRESS must be 0 (no limit) or more")
    return BufferedThreadWorker.configured(
        header_timeout=settings.api_header_timeout,
        body_timeout=settings.api_body_timeout,
        connections_per_address=settings.api_connections_per_address,
        max_body_bytes=settings.max_body_bytes,
    )


@click.command("api")
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", type=int, default=None, help="Defaults to $PORT, else 8000.")
@click.option("--workers", type=int, default=2, show_default=True, help="gunicorn processes.")
@click.option(
    "--threads",
    type=int,
    default=16,
    show_default=True,
    help="Threads per process (requests that wait for a result hold one).",
)
def api_command(host: str, port: int | None, workers: int, threads: int) -> None:
    """Serve the HTTP API with gunicorn."""
    use_metrics_dir(Settings.from_env())  # before prometheus_client is imported
    from api import create_app

    _short_gil_turns()

    with resolved_settings() as settings:
        app = create_app(settings)
        _gunicorn(
            app,
            {
                "bind": f"{host}:{port or settings.port}",
                "workers": workers,
                "threads": threads,
                "worker_class": _worker_class(settings),
                "timeout": 30,
                "graceful_timeout": 15,
                # No gunicorn access log: its lines carry paths, and paths carry player
                # ids; the app logs each request by its route (api/metrics.py).
                # One shared ~/.gunicorn/gunicorn.ctl would clash between instances.
                "control_socket_disable": True,
                "loglevel": "info",
            },
        )


def celery_queues(requested: list[str]) -> list[str]:
    """The queues Celery itself consumes: not recognitions nor live guesses, which worker
    steps of their own take off in batches (workers.consumer). Celery needs a queue: a
    worker for batches only (say, the guesser) gets IDLE_QUEUE, where nothing is sent, so
    that it never runs a sweep or an erasure in between."""
    return [q for q in requested if q not in BATCH_QUEUES] or [IDLE_QUEUE]


@click.command("worker")
@click.option(
    "--concurrency", type=int, default=None, help="Defaults to DOODLE_WORKER_CONCURRENCY."
)
@click.option("--beat", is_flag=True, help="Also run the periodic sweeper (one per deployment).")
@click.option(
    "--queues",
    default=",".join(ALL_QUEUES),
    show_default=True,
    help="Queues to consume (e.g. a worker of its own for live guesses: --queues guesses).",
)
@click.option(
    "--pool",
    type=click.Choice(["prefork", "threads", "solo"]),
    default=None,
    help="Celery's execution pool; defaults to DOODLE_WORKER_POOL (solo).",
)
@click.option("--loglevel", default="INFO", show_default=True)
def worker_command(
    concurrency: int | None, beat: bool, queues: str, pool: str | None, loglevel: str
) -> None:
    """Run a Celery worker that recognises doodles and answers live guesses."""
    use_metrics_dir(Settings.from_env())  # before prometheus_client is imported
    from workers.tasks import make_worker_app

    _short_gil_turns()
    requested = [q.strip() for q in queues.split(",") if q.strip()]
    with resolved_settings() as settings:
        app = make_worker_app(settings, [q for q in requested if q in BATCH_QUEUES])
        argv = [
            "worker",
            f"--loglevel={loglevel}",
            f"--concurrency={concurrency or settings.worker_concurrency}",
            f"--queues={','.join(celery_queues(requested))}",
            f"--pool={pool or settings.worker_pool}",
            f"--hostname=doodle-{os.getpid()}@%h",
            # Workers never talk to each other here. Gossip's restart after a lost broker
            # is where kombu's Redis transport raised the worker-killing AttributeError
            # ('NoneType' object has no attribute 'hostname', celery/kombu#582), and
            # mingle makes every reconnect wait a second for neighbours.
            "--without-gossip",
            "--without-mingle",
        ]
        if beat:
            argv += ["--beat", f"--schedule={settings.home / 'celerybeat-schedule'}"]
        app.worker_main(argv)


@click.command("beat")
@click.option("--loglevel", default="INFO", show_default=True)
def beat_command(loglevel: str) -> None:
    """Run the periodic scheduler alone (the sweeper of stale recognitions)."""
    from workers.tasks import make_worker_app

    with resolved_settings() as settings:
        settings.home.mkdir(parents=True, exist_ok=True)
        app = make_worker_app(settings)
        app.start(
            [
                "beat",
                f"--loglevel={loglevel}",
                f"--schedule={settings.home / 'celerybeat-schedule'}",
            ]
        )


@click.command("sweep")
def sweep_command() -> None:
    """Resend lost or abandoned recognitions and write pending objects once, now."""
    from core.tasks import enqueue_recognition
    from workers.recognize import sweep
    from workers.runtime import WorkerRuntime

    with resolved_settings() as settings:
        runtime = WorkerRuntime(settings)
        try:
            report = sweep(runtime, lambda rid: enqueue_recognition(runtime.redis, rid))
        finally:
            runtime.close()
    click.echo(f"resent {report.resent} recognitions, wrote {report.stored} pending objects")
