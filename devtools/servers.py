"""What the embedded Postgres and Redis have in common: their error, finding a wheel's
files without importing it, a process's command line, the tail of a log."""

from __future__ import annotations

import importlib.util
from pathlib import Path


class EmbeddedServiceError(RuntimeError):
    """An embedded server could not be found, started or reached."""


def package_dir(name: str, instead: str) -> Path:
    """The folder of an installed package, without importing it; `instead`: the variable
    that makes the package unnecessary."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServiceError(
            f"the {name!r} package is not installed; install requirements.txt, or set {instead}"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def cmdline(pid: int) -> str:
    """The command line of `pid` ("" if gone): a pid in a stale pid file may be reused."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        return raw.replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"
