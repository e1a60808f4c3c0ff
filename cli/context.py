"""How every command gets its configuration: the environment, with embedded blanks filled."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from core.settings import Settings
from devtools.embedded import EmbeddedServices
from services.connections import Connections


@contextmanager
def resolved_settings(*, redis: bool = True) -> Iterator[Settings]:
    """Settings from the environment; unset DATABASE_URL / REDIS_URL use the embedded
    servers (shared with a running `make run`, or started for this command alone)."""
    with EmbeddedServices(Settings.from_env(), redis=redis) as settings:
        yield settings


@contextmanager
def open_connections(*, redis: bool = False) -> Iterator[Connections]:
    """The database and object storage of `resolved_settings`, released at the end."""
    with resolved_settings(redis=redis) as settings:
        connections = Connections(settings)
        try:
            yield connections
        finally:
            connections.close()
