"""The storage interface every backend implements, its errors, and the key rules.

Keys are `/`-separated relative paths; `validate_key` and `validate_prefix` reject a bad
one with `ValueError` before any I/O, the same way on every backend.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Protocol, runtime_checkable


class StorageError(Exception):
    """Base class of every storage failure."""


class ObjectNotFound(StorageError):
    """The key does not exist."""

    def __init__(self, key: str) -> None:
        super().__init__(f"object not found: {key}")
        self.key = key


class StorageUnavailable(StorageError):
    """The storage cannot be used now: server down, timeout, bad credentials, folder unusable."""


@runtime_checkable
class ObjectStorage(Protocol):
    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        """Store `data` under `key`, replacing any previous object atomically."""
        ...

    def get(self, key: str) -> bytes:
        """Return the object's bytes; raise `ObjectNotFound` if there is none."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove the object; a missing key is fine."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Remove every key starting with `prefix` (non-empty); return how many."""
        ...

    def list(self, prefix: str = "") -> Iterator[str]:
        """Keys starting with `prefix`, recursively, sorted."""
        ...

    def check(self) -> None:
        """Raise `StorageUnavailable` with a reason if the storage is unusable (for /readyz)."""
        ...

    def describe(self) -> str:
        """Where the objects live, for logs: never includes a secret."""
        ...


# --------------------------------------------------------------------------- keys

MAX_KEY_BYTES = 1024  # S3's limit
MAX_SEGMENT_BYTES = 255  # NAME_MAX of common filesystems
# LocalStorage writes `.<name>.<random>.tmp~` beside the target, then renames it; no key
# may end so, on any backend, so that keys stay portable between them.
TEMP_SUFFIX = ".tmp~"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _check_segments(what: str, value: str, segments: list[str]) -> None:
    for segment in segments:
        if segment in ("", ".", ".."):
            raise ValueError(f"bad {what} {value!r}: empty, '.' or '..' segment")
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            raise ValueError(f"bad {what} {value!r}: a segment exceeds {MAX_SEGMENT_BYTES} bytes")
        if segment.endswith(TEMP_SUFFIX):
            raise ValueError(
                f"bad {what} {value!r}: segments ending in {TEMP_SUFFIX!r} are reserved"
            )


def _check_chars(what: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__name__}")
    if value.startswith("/"):
        raise ValueError(f"bad {what} {value!r}: must be relative (no leading '/')")
    if "\\" in value or _CONTROL.search(value):
        raise ValueError(
            f"bad {what} {value!r}: backslashes and control characters are not allowed"
        )
    if len(value.encode("utf-8")) > MAX_KEY_BYTES:
        raise ValueError(f"bad {what}: longer than {MAX_KEY_BYTES} bytes")
    return value


def validate_key(key: str) -> str:
    """Return `key` if it is a clean relative path like `models/3/weights.pt`, else ValueError."""
    _check_chars("key", key)
    if not key:
        raise ValueError("bad key '': must not be empty")
    _check_segments("key", key, key.split("/"))
    return key


def validate_prefix(prefix: str) -> str:
    """Like `validate_key`, but `""`, a trailing `/` and a partial last segment are allowed."""
    _check_chars("prefix", prefix)
    if prefix:
        segments = prefix.split("/")
        last = segments.pop()
        _check_segments("prefix", prefix, segments)
        if last in (".", ".."):
            raise ValueError(f"bad prefix {prefix!r}: '.' or '..' segment")
    return prefix


def require_prefix_for_delete(prefix: str) -> str:
    validate_prefix(prefix)
    if not prefix:
        raise ValueError("delete_prefix needs a non-empty prefix (refusing to delete everything)")
    return prefix
