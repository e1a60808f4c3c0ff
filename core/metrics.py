"""What the API and the workers share about metrics: the folder where every process keeps
its counters (prometheus_client's multiprocess mode), and the workers' heartbeat keys.

Imports no prometheus_client: `use_metrics_dir` runs before it is imported, because it
picks memory or files for its values at import time.

Layout: `<metrics dir>/<host>/<kind>_<pid>.db`. A folder per host, so containers sharing
one volume (docker-compose.yml) never write the same pid's file; `/metrics` merges all.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from pathlib import Path

from core.processes import pid_alive
from core.settings import Settings

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# One key per live worker process, `doodle:worker:<host>:<pid>`, expiring after 3 missed beats.
HEARTBEAT_PREFIX = "doodle:worker:"
# One key per live batch consumer, `doodle:consumer:<queue>:<host>:<pid>`, refreshed by the
# consumer's own loop (workers.consumer), so /readyz can name a queue nobody takes.
CONSUMER_PREFIX = "doodle:consumer:"
HEARTBEAT_MISSES = 3


def heartbeat_ttl_ms(settings: Settings) -> int:
    return max(int(settings.worker_heartbeat_seconds * HEARTBEAT_MISSES * 1000), 1)


def use_metrics_dir(settings: Settings) -> Path:
    """Make this process (and its forks) keep counters under the shared metrics folder.
    Called first thing by `doodle api` and `doodle worker`."""
    path = settings.metrics_path / socket.gethostname()
    if "prometheus_client" in sys.modules and os.environ.get(MULTIPROC_ENV) != str(path):
        raise RuntimeError("prometheus_client was imported before the metrics folder was set")
    path.mkdir(parents=True, exist_ok=True)
    _remove_dead(path)
    os.environ[MULTIPROC_ENV] = str(path)
    return path


def metric_files(settings: Settings) -> list[Path]:
    """Every process's counter files, of every host."""
    return sorted(settings.metrics_path.glob("*/*.db"))


def _remove_dead(path: Path) -> None:
    """Forget the counters of this host's processes that are gone (an earlier run), as
    prometheus_client asks; Prometheus reads the drop as a counter reset."""
    for file in path.glob("*.db"):
        pid = file.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and not pid_alive(int(pid)):
            file.unlink(missing_ok=True)
