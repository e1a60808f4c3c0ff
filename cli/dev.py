"""`doodle run` (what `make run` calls): the whole product in one process tree.

1. Settings from the environment; unset DATABASE_URL / REDIS_URL start (or reuse) the
   embedded Postgres and Redis under DOODLE_HOME (var/), objects go to var/objects.
2. Migrations to head; the seed model imported as `production` if no version has
   that alias yet.
3. A development API key when DOODLE_CLIENT_KEYS is unset: made once, kept in
   var/dev-client-key (0600), printed with a curl line to paste.
4. Children, each in its own process group, with the resolved URLs in their
   environment and their output prefixed with their name: `doodle worker --beat`
   (Celery + the sweeper's schedule) and `doodle api` (gunicorn on 127.0.0.1:PORT).
   The flows' schedules (`doodle flows serve`) join them once that command exists.
5. Ctrl-C or SIGTERM: children get SIGTERM, then SIGKILL after a grace period (a
   second Ctrl-C skips the wait), then the embedded services stop. A child that dies
   on its own stops everything and `doodle run` exits non-zero.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

import click

from core.embedded import EmbeddedServices
from core.settings import PROJECT_ROOT, Settings

SEED_WEIGHTS = PROJECT_ROOT / "ml" / "seed" / "quickdraw20_state_dict.pt"
SEED_CLASSES = PROJECT_ROOT / "ml" / "seed" / "classes.json"
SAMPLE_DATA = PROJECT_ROOT / "data" / "quickdraw" / "simplified"
DEV_KEY_FILE = "dev-client-key"
DEV_ADMIN_TOKEN_FILE = "dev-admin-token"
STOP_GRACE_SECONDS = 20.0
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


def _has_command(*path: str) -> bool:
    """Whether `doodle <path...>` exists (so hooks light up when a colleague adds one)."""
    from cli.main import cli

    command: Any = cli
    ctx = click.Context(cli)
    for name in path:
        if not isinstance(command, click.Group):
            return False
        command = command.get_command(ctx, name)
        if command is None:
            return False
    return True


# --------------------------------------------------------------------------- setup steps


def dev_client_key(settings: Settings) -> tuple[str, bool]:
    """(key, created): the development key in home/dev-client-key, made on first use."""
    return _dev_secret(settings, DEV_KEY_FILE, "dev-")


def dev_admin_token(settings: Settings) -> tuple[str, bool]:
    """(token, created): the development admin token in home/dev-admin-token."""
    return _dev_secret(settings, DEV_ADMIN_TOKEN_FILE, "dev-admin-")


def _dev_secret(settings: Settings, filename: str, prefix: str) -> tuple[str, bool]:
    path = settings.home / filename
    try:
        key = path.read_text().strip()
        if key:
            return key, False
    except FileNotFoundError:
        pass
    settings.home.mkdir(parents=True, exist_ok=True)
    key = prefix + secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    os.chmod(path, 0o600)
    return key, True


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


def has_production_model(settings: Settings) -> bool:
    from sqlalchemy.pool import NullPool

    from db import registry
    from db.session import make_engine, make_session_factory

    engine = make_engine(settings.db_url, poolclass=NullPool)
    try:
        with make_session_factory(engine)() as session:
            return registry.get_alias(session, "production") is not None
    finally:
        engine.dispose()


def ensure_seed_model(settings: Settings, env: dict[str, str]) -> None:
    """Import the seed's 20-word network as `production` unless some version has the alias."""
    if has_production_model(settings):
        return
    classes = json.loads(SEED_CLASSES.read_text())
    _say(f"importing the seed model ({len(classes)} words) as production")
    subprocess.run(
        [
            *doodle_command(),
            "models",
            "import",
            str(SEED_WEIGHTS),
            "--classes",
            ",".join(classes),
            "--alias",
            "production",
            "--if-missing",
        ],
        env=env,
        check=True,
    )
    # The base dataset of the starting words: golden set and replay data for the flywheel.
    _say("importing the sample of the starting words' drawings (data/quickdraw)")
    subprocess.run([*doodle_command(), "data", "import", str(SAMPLE_DATA)], env=env, check=True)


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) != 0


def banner(base_url: str, key: str | None, key_file: Path | None) -> str:
    line = "=" * 78
    parts = [line, f"  Doodle API is up: {base_url}   (Ctrl-C stops everything)"]
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


def wait_ready(base_url: str, is_alive: Any, timeout: float = READY_TIMEOUT_SECONDS) -> str | None:
    """None once /readyz answers 200, else the last answer (or error) at the deadline."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline and is_alive():
        try:
            with urllib.request.urlopen(f"{base_url}/readyz", timeout=2) as resp:
                if resp.status == 200:
                    return None
                last = f"HTTP {resp.status}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}: {exc.read()[:300].decode(errors='replace')}"
        except (OSError, urllib.error.URLError) as exc:
            last = str(exc)
        time.sleep(0.5)
    return last


# --------------------------------------------------------------------------- supervision


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    reader: threading.Thread | None = None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class Supervisor:
    """Starts children in their own process groups, relays their output, stops them."""

    env: dict[str, str]
    out: IO[str] = field(default_factory=lambda: sys.stdout)
    children: list[Child] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, name: str, argv: list[str]) -> Child:
        child = Child(name, argv)
        child.proc = subprocess.Popen(
            argv,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # Own group: the terminal's Ctrl-C reaches only us; we stop them in order.
            process_group=0,
        )
        width = max(len(name), 6)
        child.reader = threading.Thread(
            target=self._relay, args=(child, name.rjust(width)), daemon=True
        )
        child.reader.start()
        self.children.append(child)
        return child

    def _relay(self, child: Child, label: str) -> None:
        assert child.proc is not None and child.proc.stdout is not None
        for raw in iter(child.proc.stdout.readline, b""):
            text = raw.decode(errors="replace").rstrip("\n")
            with self._lock:
                self.out.write(f"{label} | {text}\n")
                self.out.flush()

    def dead(self) -> Child | None:
        return next((c for c in self.children if not c.alive), None)

    def stop(
        self, *, grace: float = STOP_GRACE_SECONDS, hurry: threading.Event | None = None
    ) -> None:
        """SIGTERM to every child (last started first), SIGKILL to the groups of stragglers."""
        for child in reversed(self.children):
            if child.alive and child.proc is not None:
                _signal_group(child.proc.pid, signal.SIGTERM, group=False)
        deadline = time.monotonic() + grace
        while any(c.alive for c in self.children):
            if time.monotonic() > deadline or (hurry is not None and hurry.is_set()):
                break
            time.sleep(0.1)
        for child in self.children:
            if child.proc is None:
                continue
            if child.alive:
                _say(f"{child.name} did not stop in time; killing it", err=True)
            # The whole group: forked workers (celery, gunicorn) go with their parent.
            _signal_group(child.proc.pid, signal.SIGKILL, group=True)
            child.proc.wait()
            if child.reader is not None:
                child.reader.join(timeout=2)


def _signal_group(pid: int, sig: signal.Signals, *, group: bool) -> None:
    try:
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


@contextmanager
def _signals_raise() -> Iterator[None]:
    """During setup, SIGTERM unwinds like Ctrl-C (so `with` blocks stop the services)."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise _Interrupted(signal.Signals(signum).name)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def _signals_to_event(stop: threading.Event, hurry: threading.Event) -> Iterator[None]:
    """While supervising: the first Ctrl-C/SIGTERM asks to stop, the second to hurry."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            hurry.set()
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def children_to_start(flows: bool) -> list[tuple[str, list[str]]]:
    doodle = doodle_command()
    children = [
        ("worker", [*doodle, "worker", "--beat", "--queues", "recognitions,maintenance"]),
        # Live guesses get a worker of their own: never behind a batch of recognitions.
        ("guesser", [*doodle, "worker", "--queues", "guesses", "--pool", "solo"]),
        ("api", [*doodle, "api", "--host", "127.0.0.1"]),
    ]
    # Hook: the flows' schedules (Prefect) run as a third child once `doodle flows serve`
    # exists; until then `doodle run` says so and carries on without them.
    if flows:
        if _has_command("flows", "serve"):
            children.append(("flows", [*doodle, "flows", "serve"]))
        else:
            _say("`doodle flows serve` is not available yet: no scheduled flows")
    return children


def supervise(settings: Settings, env: dict[str, str], key: str | None, flows: bool) -> int:
    stop, hurry = threading.Event(), threading.Event()
    supervisor = Supervisor(env)
    base_url = f"http://127.0.0.1:{settings.port}"
    with _signals_to_event(stop, hurry):
        try:
            for name, argv in children_to_start(flows):
                supervisor.start(name, argv)

            def all_alive() -> bool:
                return supervisor.dead() is None and not stop.is_set()

            not_ready = wait_ready(base_url, all_alive)
            if all_alive():
                key_file = settings.home / DEV_KEY_FILE if key else None
                with supervisor._lock:
                    click.echo(banner(base_url, key, key_file))
                    if not_ready is not None:
                        _say(f"warning: {base_url}/readyz is not ready yet: {not_ready}", err=True)

            while not stop.wait(0.2):
                dead = supervisor.dead()
                if dead is not None:
                    assert dead.proc is not None
                    _say(
                        f"{dead.name} exited unexpectedly (code {dead.proc.returncode}); "
                        "stopping everything",
                        err=True,
                    )
                    return 1
            _say("stopping (Ctrl-C again to kill at once)")
            return 0
        finally:
            supervisor.stop(hurry=hurry)


# --------------------------------------------------------------------------- the command


@click.command("run")
@click.option("--flows/--no-flows", default=True, help="Run the flows' schedules too.")
def run_command(flows: bool) -> None:
    """Run everything locally: embedded services, migrations, seed model, worker, API."""
    from db import migrate

    settings = Settings.from_env()
    if not _port_free("127.0.0.1", settings.port):
        raise click.ClickException(
            f"port {settings.port} is already in use (is `make run` running elsewhere?); "
            "stop it or set PORT"
        )
    try:
        with _signals_raise(), EmbeddedServices(settings) as resolved:
            _say(f"database {resolved.db_url}")
            _say(f"redis    {resolved.broker_url}")
            _say(f"objects  {resolved.object_store_url}")
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
            ensure_seed_model(resolved, env)

            code = supervise(resolved, env, key, flows)
    except (KeyboardInterrupt, _Interrupted):
        _say("interrupted; stopped")
        sys.exit(130)
    except subprocess.CalledProcessError as exc:
        raise click.ClickException(
            f"{' '.join(map(str, exc.cmd))} failed ({exc.returncode})"
        ) from exc
    if code:
        sys.exit(code)
