"""The pieces of scripts/bench.py and scripts/flywheel_bench.py, one job a module.

- stats: the statistics both scripts use (percentiles, medians, least-squares line), on
  numpy and `statistics`
- summaries: figures of closed- and open-loop runs, medians over runs, ratios
- inputs: the Quick, Draw! drawings and request bodies (whole and partial drawings)
- load: closed-loop and open-loop (paced) HTTP load generators
- procs: readiness of the processes started (devtools.processes), commands, Redis flush
- cpu: CPU seconds per component (process groups, Postgres, Redis, this process)
- s3: moto's S3 server as a subprocess
- systems: starting the baseline and the product
- measure: one measured closed-loop run (load + CPU) and the warm-up
- depth: queue depth sampling (Redis list + unfinished rows) and drain arithmetic
- report: text tables and the environment block of the JSON
- session: what every scenario sets up and tears down (temp folder, processes, storage)
- compare, burst, guesses: the scenarios
- flywheel_data, timers, flywheel_report: the flywheel benchmark's doodles, its timed calls
  inside the flows, and its fits and table

scripts/ is not a package: the scripts put this folder's parent on sys.path.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CLIENT_KEY = "bench-client-key"
