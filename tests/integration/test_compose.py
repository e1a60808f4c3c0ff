"""docker-compose.yml and the Dockerfile agree with the code.

No Docker engine runs here, so the stack itself cannot start; instead this reads the
files and checks what would break first: every command of ours is a real `doodle`
command whose arguments parse, every variable we set is one `Settings.from_env` reads,
the URLs parse with our own parsers, the api's port is the one `doodle api` binds,
health checks and named volumes are in place, and the image's CMD is a real command.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
import pytest
import redis
import yaml
from click.testing import CliRunner

from core.settings import PROJECT_ROOT, Settings
from core.storage import open_storage
from db.registry import Alias
from db.session import normalize_url

COMPOSE = PROJECT_ROOT / "docker-compose.yml"
DOCKERFILE = PROJECT_ROOT / "Dockerfile"
DOCKERIGNORE = PROJECT_ROOT / ".dockerignore"
IMAGE_WORKDIR = "/app"  # the Dockerfile copies the repository there

# What a .env would hold; the compose file requires the first two.
DOTENV = {"DOODLE_CLIENT_KEYS": "game-key-1,game-key-2", "DOODLE_ADMIN_TOKENS": "admin-token"}

# Variables our processes read that are not Settings: Prefect's client.
FOREIGN_VARIABLES = {"PREFECT_API_URL"}

BASE_SERVICES = {"postgres", "redis", "minio", "prefect-server"}
OUR_SERVICES = {"migrate", "api", "worker", "guesser", "beat", "flows"}


# --------------------------------------------------------------------------- helpers

_VAR = re.compile(r"\$(?:\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\})")


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's variable substitution: ${V}, ${V:-default}, ${V-default}, ${V:?err}, $$."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group("name"), m.group("op"), m.group("arg")
        present = name in env and (env[name] != "" or not (op or "").startswith(":"))
        if present:
            return env[name]
        if op in (":-", "-"):
            return arg or ""
        if op in (":?", "?"):
            raise KeyError(f"{name}: {arg}")
        return ""

    return _VAR.sub(sub, value)


def load_compose(env: Mapping[str, str] = DOTENV) -> dict[str, Any]:
    raw = yaml.safe_load(COMPOSE.read_text())
    result: dict[str, Any] = interpolate(raw, env)
    return result


def our_commands(command: list[str]) -> list[list[str]]:
    """The doodle invocations in a service's command (a list, or `sh -c "a && b"`)."""
    if command[:2] == ["sh", "-c"]:
        return [shlex.split(part) for part in command[2].split("&&")]
    return [command]


def resolve_command(argv: list[str]) -> tuple[list[str], click.Command, list[str]]:
    """(subcommand path, the command, its remaining arguments) for `doodle ARGV...`."""
    from cli.main import cli

    assert argv[0] == "doodle", f"not a doodle command: {argv}"
    path: list[str] = []
    command: click.Command = cli
    rest = argv[1:]
    while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
        sub = command.get_command(click.Context(command), rest[0])
        if sub is None:
            raise AssertionError(f"`doodle {' '.join([*path, rest[0]])}` does not exist")
        path.append(rest.pop(0))
        command = sub
    assert not isinstance(command, click.Group), f"`doodle {' '.join(path)}` needs a subcommand"
    return path, command, rest


def settings_variables() -> set[str]:
    """The names Settings.from_env reads, recorded while it reads them."""

    seen: set[str] = set()

    class Recorder(dict[str, str]):
        def get(self, key: str, default: Any = None) -> Any:
            seen.add(key)
            return super().get(key, default)

        def __getitem__(self, key: str) -> str:
            seen.add(key)
            return super().__getitem__(key)

        def __contains__(self, key: object) -> bool:
            seen.add(str(key))
            return super().__contains__(key)

    Settings.from_env(Recorder())
    return seen


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, args = line.partition(" ")
            out.append((op.upper(), args.strip()))
    return out


# --------------------------------------------------------------------------- compose


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


def test_expected_services(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == BASE_SERVICES | OUR_SERVICES


def test_required_secrets_must_be_given() -> None:
    for name in DOTENV:
        env = {k: v for k, v in DOTENV.items() if k != name}
        with pytest.raises(KeyError, match=name):
            load_compose(env)


@pytest.mark.parametrize("service", sorted(OUR_SERVICES))
def test_our_services_share_one_image(compose: dict[str, Any], service: str) -> None:
    spec = compose["services"][service]
    assert spec["build"] == "."
    assert spec["image"] == compose["services"]["api"]["image"]


@pytest.mark.parametrize("service", sorted(OUR_SERVICES))
def test_command_is_a_real_doodle_command(
    compose: dict[str, Any], service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli.main import cli

    monkeypatch.chdir(PROJECT_ROOT)  # the image's WORKDIR holds the repository
    for argv in our_commands(compose["services"][service]["command"]):
        path, command, rest = resolve_command(argv)
        result = CliRunner().invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, result.output
        # The arguments parse (types, required options, files that must exist).
        command.make_context(" ".join(["doodle", *path]), list(rest))


def test_migrate_imports_the_seed_with_its_classes(compose: dict[str, Any]) -> None:
    spec = compose["services"]["migrate"]
    assert spec["restart"] == "no"
    steps = our_commands(spec["command"])
    assert steps[0][:3] == ["doodle", "db", "upgrade"]
    path, command, rest = resolve_command(steps[1])
    assert path == ["models", "import"]
    ctx = command.make_context("doodle models import", list(rest))
    assert ctx.params["alias"] == Alias.PRODUCTION
    assert ctx.params["if_missing"] is True
    classes = json.loads((PROJECT_ROOT / "ml/seed/classes.json").read_text())
    assert ctx.params["classes"].split(",") == classes
    assert (PROJECT_ROOT / ctx.params["path"]).resolve() == (
        PROJECT_ROOT / "ml/seed/quickdraw20_state_dict.pt"
    )


@pytest.mark.parametrize("service", sorted(OUR_SERVICES))
def test_environment_names_are_ones_the_code_reads(compose: dict[str, Any], service: str) -> None:
    env = compose["services"][service]["environment"]
    unknown = set(env) - settings_variables() - FOREIGN_VARIABLES
    assert not unknown, f"{service} sets variables nothing reads: {sorted(unknown)}"
    for name in ("DATABASE_URL", "REDIS_URL", "STORAGE_URL", "DOODLE_CLIENT_KEYS"):
        assert name in env, f"{service} lacks {name}"


def test_environment_values_parse(compose: dict[str, Any]) -> None:
    env = {k: str(v) for k, v in compose["services"]["api"]["environment"].items()}
    settings = Settings.from_env(env)
    assert normalize_url(settings.db_url).startswith("postgresql+psycopg://doodle:")
    assert settings.db_url.endswith("@postgres:5432/doodle")
    assert redis.Redis.from_url(settings.broker_url).connection_pool.connection_kwargs["host"] == (
        "redis"
    )
    open_storage(settings.object_store_url)  # parses; does no I/O
    assert settings.object_store_url.startswith("s3://")
    assert "@minio:9000/" in settings.object_store_url
    assert settings.client_keys == ("game-key-1", "game-key-2")
    assert settings.admin_tokens == ("admin-token",)


def test_credentials_agree_across_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    pg = services["postgres"]["environment"]
    minio = services["minio"]["environment"]
    env = services["api"]["environment"]
    assert env["DATABASE_URL"] == (
        f"postgresql://{pg['POSTGRES_USER']}:{pg['POSTGRES_PASSWORD']}@postgres:5432/"
        f"{pg['POSTGRES_DB']}"
    )
    assert env["STORAGE_URL"].startswith(
        f"s3://{minio['MINIO_ROOT_USER']}:{minio['MINIO_ROOT_PASSWORD']}@minio:9000/"
    )
    assert len(minio["MINIO_ROOT_PASSWORD"]) >= 8  # MinIO refuses shorter secrets
    assert services["flows"]["environment"]["PREFECT_API_URL"] == "http://prefect-server:4200/api"


def test_api_port_matches_doodle_api() -> None:
    from cli.services import api_command

    compose = load_compose()
    api = compose["services"]["api"]
    defaults = {p.name: p.default for p in api_command.params}
    port = Settings.from_env({}).port
    assert defaults["host"] == "0.0.0.0"  # reachable from outside the container
    assert defaults["port"] is None  # i.e. $PORT, else Settings' default
    published = [str(p).rsplit(":", 1)[1] for p in api["ports"]]
    assert published == [str(port)]
    assert f"127.0.0.1:{port}/readyz" in " ".join(api["healthcheck"]["test"])
    assert str(port) in dict(dockerfile_instructions())["EXPOSE"].split()


def test_healthchecks_and_dependencies(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("postgres", "redis", "minio", "api", "prefect-server"):
        assert services[name]["healthcheck"]["test"], f"{name} has no health check"
    for name, spec in services.items():
        for dep, cond in (spec.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            if cond["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep}'s health"
            elif cond["condition"] == "service_completed_successfully":
                assert services[dep].get("restart") == "no", f"{dep} must be one-shot"
    for name in OUR_SERVICES - {"migrate"}:
        cond = services[name]["depends_on"]["migrate"]["condition"]
        assert cond == "service_completed_successfully"


def test_make_run_runs_what_compose_runs(compose: dict[str, Any]) -> None:
    """`doodle run` supervises the same roles, one process each, with the same commands
    (the sweeper's beat on its own in both, never inside a worker)."""
    from cli.dev import children_to_start, doodle_command

    doodle = doodle_command()
    local = {
        name: ["doodle", *argv[len(doodle) :]] if argv[: len(doodle)] == doodle else argv
        for name, argv in children_to_start(flows=True, prefect_port=4200)
    }
    services = compose["services"]
    assert set(local) == OUR_SERVICES - {"migrate"} | {"prefect"}
    for name in ("worker", "guesser", "beat", "flows"):
        assert local[name] == services[name]["command"], name
    # The api binds 127.0.0.1 locally and 0.0.0.0 (the default) in its container.
    assert local["api"] == [*services["api"]["command"], "--host", "127.0.0.1"]
    assert not any("--beat" in argv for argv in local.values())
    assert local["prefect"][-5:] == ["start", "--host", "127.0.0.1", "--port", "4200"]
    assert services["prefect-server"]["command"][:3] == ["prefect", "server", "start"]


def test_named_volumes(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    used = set()
    for name, spec in compose["services"].items():
        for mount in spec.get("volumes", []):
            source = str(mount).split(":", 1)[0]
            assert not source.startswith(("/", ".", "~")), f"{name} mounts a host path"
            used.add(source)
    assert used == declared
    for name in ("postgres", "redis", "minio"):
        assert compose["services"][name]["volumes"], f"{name} keeps no data"


# --------------------------------------------------------------------------- Dockerfile


def test_dockerfile() -> None:
    instructions = dockerfile_instructions()
    ops = dict(instructions)
    assert ops["FROM"] == "python:3.11-slim"
    assert ops["WORKDIR"] == IMAGE_WORKDIR
    assert "ENTRYPOINT" not in ops  # compose commands are full argv lists
    cmd = json.loads(ops["CMD"])
    path, _, rest = resolve_command(cmd)
    assert path == ["api"] and rest == []
    runs = " ".join(args for op, args in instructions if op == "RUN")
    assert "-r requirements.txt" in runs
    assert "pip install --no-deps -e ." in runs
    assert ops["USER"] not in ("root", "0")
    env = dict(re.findall(r"(\w+)=(\S+)", ops["ENV"]))
    assert int(env["PORT"]) == Settings.from_env({}).port


def test_dockerignore_keeps_what_the_image_needs() -> None:
    ignored = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for needed in ("ml", "migrations", "core", "cli", "pyproject.toml", "requirements.txt"):
        assert needed not in ignored
    for kept_out in (".venv", "var", ".git", ".env"):
        assert kept_out in ignored
    weights = Path("ml/seed/quickdraw20_state_dict.pt")
    assert (PROJECT_ROOT / weights).is_file()
    assert not any(str(weights).startswith(p.rstrip("/")) for p in ignored)
