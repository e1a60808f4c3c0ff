"""What a flow run talks to, built from the environment once per process.

Flow runs start in processes of their own (Prefect's runner), so they read the same
environment as every other `doodle` process; nothing is passed as a parameter that
Prefect would have to serialise.
"""

from __future__ import annotations

from core.settings import Settings
from db import registry
from db.connections import Connections
from ml.artifacts import load_verified
from ml.network import QuickDrawNet


class FlowContext(Connections):
    def load_version(self, version_id: int) -> tuple[QuickDrawNet, list[str]]:
        with self.sessions() as s:
            version = registry.get_version(s, version_id)
            if version is None:
                raise LookupError(f"no model version {version_id}")
            key, checksum, classes = version.artifact_key, version.checksum, list(version.classes)
        return load_verified(self.storage, key, checksum, classes), classes

    def alias_version(self, alias: str) -> int | None:
        with self.sessions() as s:
            version = registry.get_alias(s, alias)
            return None if version is None else version.id


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
