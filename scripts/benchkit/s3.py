"""moto's S3 server over HTTP, as a subprocess in its own process group (component `storage`).

Both systems get `s3://testing:testing@127.0.0.1:PORT/bench`; each creates the bucket on first
use (core.storage.S3Storage; the baseline opens its storage through the same module).
"""

from __future__ import annotations

import os
import sys

from benchkit.procs import wait_ready
from devtools.net import free_port
from devtools.processes import Processes

ACCESS_KEY = SECRET_KEY = "testing"
BUCKET = "bench"

# moto.server's own main(), with werkzeug's one log line per request turned off: that logging
# would cost the storage CPU the product does not pay with a real S3 server.
_QUIET_MOTO = """
import logging, sys
logging.getLogger("werkzeug").setLevel(logging.WARNING)
from moto.server import main
main(sys.argv[1:])
"""


def start_moto(procs: Processes, name: str = "storage") -> str:
    """Start moto's server on a free port; the storage URL for it."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    procs.start(name, [sys.executable, "-c", _QUIET_MOTO, "-H", "127.0.0.1", "-p", str(port)], env)
    took = wait_ready(procs, [name], port, "/", timeout=60, ready=lambda status: status < 500)
    print(f"moto S3 server ready on :{port} in {took:.1f}s", flush=True)
    return f"s3://{ACCESS_KEY}:{SECRET_KEY}@127.0.0.1:{port}/{BUCKET}"
