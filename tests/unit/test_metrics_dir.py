"""The metrics folder every process shares (core.metrics): a folder per host, the files of
processes that are gone removed at start, and a loud error if prometheus_client came first.
Real processes: prometheus_client picks its storage once, at import."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from core.metrics import metric_files, use_metrics_dir
from core.settings import PROJECT_ROOT, Settings

COUNT_ONE = """
import sys
from core.metrics import use_metrics_dir
from core.settings import Settings
from pathlib import Path
use_metrics_dir(Settings(home=Path(sys.argv[1])))
from prometheus_client import Counter
Counter("doodle_test_things", "things", ["kind"]).labels("a").inc(int(sys.argv[2]))
"""
WAIT = "print('counted', flush=True); sys.stdin.read()"


def _run(code: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _merged(settings: Settings) -> dict[str, float]:
    from prometheus_client.multiprocess import MultiProcessCollector

    files = [str(f) for f in metric_files(settings)]
    return {s.name: s.value for m in MultiProcessCollector.merge(files) for s in m.samples}


def test_processes_write_files_that_merge_and_a_start_forgets_the_gone(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    # One process stays alive (it waits for its stdin) while another counts and exits.
    alive = subprocess.Popen(
        [sys.executable, "-c", COUNT_ONE + WAIT, str(tmp_path), "2"],
        cwd=PROJECT_ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert alive.stdout is not None and alive.stdout.readline() == "counted\n"
        done = _run(COUNT_ONE, str(tmp_path), "3")
        assert done.returncode == 0, done.stderr
        files = metric_files(settings)
        assert {f.parent for f in files} == {tmp_path / "metrics" / socket.gethostname()}
        assert _merged(settings)["doodle_test_things_total"] == 5
    finally:
        alive.communicate("", timeout=30)
    # The next start removes the files of both, now gone: their counts start again at 0.
    done = _run(COUNT_ONE, str(tmp_path), "7")
    assert done.returncode == 0, done.stderr
    assert _merged(settings)["doodle_test_things_total"] == 7


def test_a_start_forgets_processes_that_are_gone(tmp_path: Path) -> None:
    folder = tmp_path / "metrics" / socket.gethostname()
    folder.mkdir(parents=True)
    dead = folder / "counter_999999999.db"  # above any pid_max: no such process
    mine = folder / f"counter_{os.getpid()}.db"
    dead.write_bytes(b"")
    mine.write_bytes(b"")
    env_before = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    try:
        # prometheus_client is imported in this process already: only the same folder passes.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
        assert use_metrics_dir(Settings(home=tmp_path)) == folder
    finally:
        if env_before is None:
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        else:
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = env_before
    assert not dead.exists() and mine.exists()


def test_prometheus_imported_first_is_a_loud_error(tmp_path: Path) -> None:
    done = _run(
        "import prometheus_client, sys\n"
        "from core.metrics import use_metrics_dir\n"
        "from core.settings import Settings\n"
        "from pathlib import Path\n"
        "use_metrics_dir(Settings(home=Path(sys.argv[1])))",
        str(tmp_path),
    )
    assert done.returncode != 0
    assert "prometheus_client was imported before the metrics folder was set" in done.stderr
