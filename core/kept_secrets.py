"""Secrets kept in a file of their own (0600), made on first use: `make run`'s development
key and token, the erasure receipts' key."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


def kept_secret(path: Path, make: Callable[[], str]) -> tuple[str, bool]:
    """(secret, created): the secret in `path`, or a new one from `make` written there.

    The file appears with its content in one step (a hard link of a finished temporary
    file), so a process starting at the same time reads the same secret, never an empty
    one; if two make one at once, the first link wins and both return it."""
    secret = _read(path)
    if secret:
        return secret, False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(make() + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            if _read(path):
                return _read(path), False
            os.replace(tmp, path)  # an empty file left by an older version
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return _read(path), True
