"""The pieces of scripts/bench.py, one job a module.

- stats: percentiles, summaries of closed- and open-loop runs, medians over runs, ratios
- inputs: the Quick, Draw! drawings and request bodies (whole and partial drawings)
- load: closed-loop and open-loop (paced) HTTP load generators
- procs: process groups, free ports, readiness, a fresh database, Redis flush
- cpu: CPU seconds per component (process groups, Postgres, Redis, this process)
- s3: moto's S3 server as a subprocess
- systems: starting the baseline and the product
- measure: one measured closed-loop run (load + CPU) and the warm-up
- depth: queue depth sampling (Redis list + unfinished rows) and drain arithmetic
- report: text tables and the environment block of the JSON
- session: what every scenario sets up and tears down (temp folder, processes, storage)
- compare, burst, guesses: the scenarios

scripts/ is not a package: scripts/bench.py puts this folder's parent on sys.path.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CLIENT_KEY = "bench-client-key"
