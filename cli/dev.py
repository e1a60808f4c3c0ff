"""`doodle run` (what `make run` calls): the whole product in one process tree.

1. Settings from the environment; unset DATABASE_URL / REDIS_URL start (or reuse) the
   embedded Postgres and Redis under DOODLE_HOME (var/), objects go to var/objects.
2. Migrations to head; the seed model imported as `production` if no version has
   that alias yet.
3. A development API key when DOODLE_CLIENT_KEYS is unset: made once, kept in
   var/dev-client-key (0600), printed with a curl line to paste.
4. Children, each in its own process group, with the resolved URLs in their
   environment and their output prefixed with their name: Prefect's server (API and
   UI on 127.0.0.1:DOODLE_PREFECT_PORT, unless PREFECT_API_URL names one), `doodle
   worker` (recognitions), a second worker for live guesses, `doodle beat` (the
   sweeper's schedule), `doodle api` (gunicorn on 127.0.0.1:PORT) and `doodle flows
   serve` (the flows' schedules).
5. Supervision (devtools/supervisor.py): a child that exits, or an embedded server that
   stops, is started again with back-off; the rest keep serving.
6. Ctrl-C, SIGTERM or SIGHUP: children get SIGTERM, then SIGKILL after a grace period (a
   second Ctrl-C skips the wait), then the embedded services stop.
7. Killed outright (SIGKILL, the OOM killer): a watchdog started first (devtools/watchdog.py)
   sees it die and stops every process it started, then the embedded servers.
"""

from __future__ import annotations

import getpass
import json
import os
import secrets
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click
from sqlalchemy.orm import Session, sessionmaker

from core.kept_secrets import kept_secret
from core.logs import redact_url
from core.settings import PROJECT_ROOT, Settings
from db.registry import Alias, get_alias
from devtools.embedded import EmbeddedServices
from devtools.net import port_open, wait_http
from devtools.supervisor import Child, Output, Server, Supervisor
from devtools.watchdog import MARKER, Watchdog
from services.errors import ServiceError

if TYPE_CHECKING:
    from services.connections import Connections

SEED_WEIGHTS = PROJECT_ROOT / "ml" / "seed" / "quickdraw20_state_dict.pt"
SEED_CLASSES = PROJECT_ROOT / "ml" / "seed" / "classes.json"
SAMPLE_DATA = PROJECT_ROOT / "data" / "quickdraw" / "simplified"
# Google's bitmaps of 9 of the words, up to 900 rows each (its manifest.json skips the rows that
# repeat SAMPLE_DATA's drawings): the evidence the promotion gate needs (README, The gate).
SAMPLE_BITMAPS = PROJECT_ROOT / "data" / "quickdraw" / "bitmaps"
DEV_KEY_FILE = "dev-client-key"
DEV_ADMIN_TOKEN_FILE = "dev-admin-token"
READY_TIMEOUT_SECONDS = 120.0


class _Interrupted(Exception):
    """SIGTERM before the children run: unwind like Ctrl-C so the services stop."""


def _say(message: str, *, err: bool = False) -> None:
    click.echo(click.style(f"doodle run: {message}", bold=True), err=err)


def doodle_command() -> list[str]:
    """How to run `doodle` with this interpreter (the venv's script if installed)."""
    script = Path(sys.executable).with_name("doodle")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "cli.main"]


# --------------------------------------------------------------------------- setup steps


def dev_client_key(settings: Settings) -> tuple[str, bool]:
    """(key, created): the development key in home/dev-client-key, made on first use."""
    return _dev_secret(settings, DEV_KEY_FILE, "dev-")


def dev_admin_token(settings: Settings) -> tuple[str, bool]:
    """(token, created): the development admin token in home/dev-admin-token."""
    return _dev_secret(settings, DEV_ADMIN_TOKEN_FILE, "dev-admin-")


def _dev_secret(settings: Settings, filename: str, prefix: str) -> tuple[str, bool]:
    return kept_secret(settings.home / filename, lambda: prefix + secrets.token_urlsafe(24))


def child_env(
    settings: Settings, client_keys: Sequence[str], admin_tokens: Sequence[str] = ()
) -> dict[str, str]:
    """The environment of every child: ours plus the resolved configuration."""
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": settings.db_url,
            "REDIS_URL": settings.broker_url,
            "STORAGE_URL": settings.object_store_url,
            "DOODLE_CLIENT_KEYS": ",".join(client_keys),
            "DOODLE_ADMIN_TOKENS": ",".join(admin_tokens or settings.admin_tokens),
            "DOODLE_HOME": str(settings.home),
            "PORT": str(settings.port),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def has_production_model(sessions: sessionmaker[Session]) -> bool:
    with sessions() as session:
        return get_alias(session, Alias.PRODUCTION) is not None


def ensure_seed_model(settings: Settings) -> bool:
    """Import the seed's 20-word network as `production`, and the sample of its words'
    drawings, unless some version has the alias. True if it imported them.

    In this process, as `doodle models import` and `doodle data import` would; the
    services load torch only when there is something to import.
    """
    from services.connections import Connections

    connections = Connections(settings)
    try:
        if has_production_model(connections.sessions):
            return False
        _import_seed(connections)
        return True
    finally:
        connections.close()


def _import_seed(connections: Connections) -> None:
    from services.datasets import import_sources
    from services.models import import_model

    classes = json.loads(SEED_CLASSES.read_text())
    _say(f"importing the seed model ({len(classes)} words) as production")
    imported = import_model(
        connections.sessions,
        connections.storage,
        SEED_WEIGHTS.read_bytes(),
        classes,
        source=str(SEED_WEIGHTS),
        actor=f"cli:{getpass.getuser()}",  # as `doodle models import` names its actor
        alias=Alias.PRODUCTION,
        if_missing=True,
    )
    click.echo(json.dumps(imported.as_dict()))
    # The base dataset of the starting words: golden set and replay data for the flywheel.
    _say("importing the sample of the starting words' drawings (data/quickdraw)")
    report = import_sources(connections.sessions, [str(SAMPLE_DATA), str(SAMPLE_BITMAPS)])
    click.echo(json.dumps(report.as_dict()))


def use_prefect(settings: Settings, env: dict[str, str]) -> int | None:
    """Point the children at a Prefect server: PREFECT_API_URL's if set, else the one
    `doodle run` starts on DOODLE_PREFECT_PORT (returned). Its state lives in home/prefect."""
    if env.get("PREFECT_API_URL"):
        _say(f"prefect  {env['PREFECT_API_URL']} (PREFECT_API_URL)")
        return None
    port = settings.prefect_port
    if port_open("127.0.0.1", port):
        raise click.ClickException(
            f"port {port} (the Prefect server's) is already in use; stop what uses it, set "
            "DOODLE_PREFECT_PORT to a free port, or run with --no-flows"
        )
    home = settings.home / "prefect"
    home.mkdir(parents=True, exist_ok=True)
    env.setdefault("PREFECT_HOME", str(home))
    # A local server has no need to phone home; its SQLite only gets busier if it does.
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    env["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"
    _say(f"prefect  http://127.0.0.1:{port} (the UI; DOODLE_PREFECT_PORT moves it)")
    return port


def banner(
    base_url: str,
    key: str | None,
    key_file: Path | None,
    prefect_api: str | None = None,
    admin_token_file: Path | None = None,
) -> str:
    line = "=" * 78
    parts = [line, f"  Doodle API is up: {base_url}   (Ctrl-C stops everything)"]
    if prefect_api:
        ui = prefect_api.removesuffix("/").removesuffix("/api")
        parts += [f"  Prefect UI (the flywheel's runs and reports): {ui}"]
    token = f" (token in {admin_token_file})" if admin_token_file else ""
    parts += [f"  Admin page (doodles, review queue, models): {base_url}/admin{token}"]
    if key is not None:
        shown = f" (kept in {key_file})" if key_file else ""
        body = '{"word": "lightning", "drawing": [[[10, 60, 30, 90], [0, 60, 60, 140]]]}'
        parts += [
            "",
            f"  Development API key{shown}:",
            f"      {key}",
            "",
            "  Try it:",
            f"    curl -s {base_url}/v1/recognitions \\",
            f"      -H 'X-API-Key: {key}' -H 'Content-Type: application/json' \\",
            f"      -H 'Prefer: wait=5' -d '{body}'",
        ]
    parts += [line]
    return "\n".join(parts)


# --------------------------------------------------------------------------- supervision


@contextmanager
def _signals_raise() -> Iterator[None]:
    """During setup, SIGTERM (or SIGHUP: the terminal closed) unwinds like Ctrl-C, so
    `with` blocks stop the services."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise _Interrupted(signal.Signals(signum).name)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@contextmanager
def _signals_to_event(stop: threading.Event, hurry: threading.Event) -> Iterator[None]:
    """While supervising: the first Ctrl-C/SIGTERM asks to stop, the second to hurry.
    SIGHUP too: the children, in process groups of their own, would outlive a closed
    terminal otherwise."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            hurry.set()
        stop.set()

    stopping = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, handler) for s in stopping}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def prefect_command(port: int) -> list[str]:
    """Prefect's own server (API and UI), as `prefect server start` runs it."""
    script = Path(sys.executable).with_name("prefect")
    prefect = [str(script)] if script.exists() else [sys.executable, "-m", "prefect"]
    return [*prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)]


def children_to_start(flows: bool, prefect_port: int | None = None) -> list[tuple[str, list[str]]]:
    """(name, argv) of every child, in start order. `prefect_port`: start a Prefect
    server there (None: PREFECT_API_URL names one already)."""
    doodle = doodle_command()
    children = []
    if flows and prefect_port is not None:
        children.append(("prefect", prefect_command(prefect_port)))
    children += [
        ("worker", [*doodle, "worker", "--queues", "recognitions,maintenance"]),
        # Live guesses get a worker of their own: never behind a batch of recognitions.
        ("guesser", [*doodle, "worker", "--queues", "guesses", "--pool", "solo"]),
        # The sweeper's schedule on its own: it neither dies nor restarts with a worker.
        ("beat", [*doodle, "beat"]),
        ("api", [*doodle, "api", "--host", "127.0.0.1"]),
    ]
    if flows:
        children.append(("flows", [*doodle, "flows", "serve"]))
    return children


def supervise(
    settings: Settings,
    env: dict[str, str],
    key: str | None,
    flows: bool,
    embedded: EmbeddedServices,
    prefect_port: int | None,
) -> int:
    stop, hurry = threading.Event(), threading.Event()
    supervisor = Supervisor()
    base_url = f"http://127.0.0.1:{settings.port}"
    for name in embedded.entered():
        supervisor.watch(
            Server(name, partial(embedded.alive, name), partial(embedded.restart, name))
        )
    with _signals_to_event(stop, hurry):
        try:
            for name, argv in children_to_start(flows, prefect_port):
                supervisor.start(Child(name, argv, env, supervisor.output))

            # Children that die while the API comes up are started again meanwhile.
            ready = threading.Thread(
                target=_announce_when_ready,
                args=(supervisor.output, base_url, key, settings, env, stop),
                daemon=True,
            )
            ready.start()
            supervisor.run(stop)
            supervisor.output.say("stopping (Ctrl-C again to kill at once)")
            return 0
        finally:
            supervisor.stop(hurry=hurry)


def _announce_when_ready(
    output: Output,
    base_url: str,
    key: str | None,
    settings: Settings,
    env: dict[str, str],
    stop: threading.Event,
) -> None:
    # None once /readyz answers 200, else its last answer at the deadline.
    not_ready = wait_http(
        f"{base_url}/readyz", READY_TIMEOUT_SECONDS, keep_waiting=lambda: not stop.is_set()
    )
    if stop.is_set():
        return
    key_file = settings.home / DEV_KEY_FILE if key else None
    with output.lock:
        token_file = settings.home / DEV_ADMIN_TOKEN_FILE
        shown = token_file if token_file.is_file() and not settings.admin_tokens else None
        click.echo(banner(base_url, key, key_file, env.get("PREFECT_API_URL"), shown))
    if not_ready is not None:
        output.say(f"warning: {base_url}/readyz is not ready yet: {not_ready}")


# --------------------------------------------------------------------------- the command


@click.command("run")
@click.option("--flows/--no-flows", default=True, help="Run the flows' schedules too.")
def run_command(flows: bool) -> None:
    """Run everything locally: embedded services, migrations, seed model, worker, API."""
    from db import migrate

    settings = Settings.from_env()
    if port_open("127.0.0.1", settings.port):
        raise click.ClickException(
            f"port {settings.port} is already in use (is `make run` running elsewhere?); "
            "stop it or set PORT"
        )
    try:
        embedded = EmbeddedServices(settings)
        with _signals_raise(), Watchdog() as run_id, embedded as resolved:
            _say(f"database {redact_url(resolved.db_url)}")
            _say(f"redis    {redact_url(resolved.broker_url)}")
            _say(f"objects  {redact_url(resolved.object_store_url)}")
            migrate.upgrade(resolved.db_url)

            key: str | None = None
            client_keys = list(resolved.client_keys)
            if not client_keys:
                key, created = dev_client_key(resolved)
                client_keys = [key]
                if created:
                    _say(f"created a development API key in {resolved.home / DEV_KEY_FILE}")
            admin_tokens = list(resolved.admin_tokens)
            if not admin_tokens:
                token, created = dev_admin_token(resolved)
                admin_tokens = [token]
                if created:
                    _say(
                        "created a development admin token in "
                        f"{resolved.home / DEV_ADMIN_TOKEN_FILE} (Authorization: Bearer ...)"
                    )
            env = child_env(resolved, client_keys, admin_tokens)
            env[MARKER] = run_id  # how the watchdog finds them and their forks
            prefect_port = use_prefect(resolved, env) if flows else None
            ensure_seed_model(resolved)

            code = supervise(resolved, env, key, flows, embedded, prefect_port)
    except (KeyboardInterrupt, _Interrupted):
        _say("interrupted; stopped")
        sys.exit(130)
    except ServiceError as exc:  # the seed import refused (bad weights, bad sample data)
        raise click.ClickException(f"importing the seed failed: {exc}") from exc
    if code:
        sys.exit(code)
