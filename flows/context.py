"""What a flow run talks to, built from the environment once per process.

Flow runs start in processes of their own (Prefect's runner), so they read the same
environment as every other `doodle` process; nothing is passed as a parameter that
Prefect would have to serialise.
"""

from __future__ import annotations

from functools import cached_property

import redis

from core.settings import Settings
from ml.network import QuickDrawNet
from services import artifacts
from services.connections import Connections


class FlowContext(Connections):
    @cached_property
    def redis(self) -> redis.Redis:
        """What removing doodles clears in Redis (the retention flow)."""
        return redis.Redis.from_url(self.settings.broker_url, socket_connect_timeout=2)

    def close(self) -> None:
        if "redis" in self.__dict__:
            self.__dict__["redis"].close()
        super().close()

    def load_version(self, version_id: int) -> tuple[QuickDrawNet, list[str]]:
        """Raises services.errors.UnknownVersion (a LookupError) for an unknown id."""
        return artifacts.load_version(self.sessions, self.storage, version_id)

    def alias_version(self, alias: str) -> int | None:
        ref = artifacts.alias_ref(self.sessions, alias)
        return None if ref is None else ref.version_id


_current: FlowContext | None = None


def use_context(context: FlowContext | None) -> None:
    """Set the context flows use in this process (the CLI and the tests call this).

    The caller owns the context it passes and closes it.
    """
    global _current
    _current = context


def flow_context() -> FlowContext:
    global _current
    if _current is None:
        _current = FlowContext(Settings.from_env())
    return _current
