"""What a doodle PNG costs the worker's decode (ml.raster.bitmap_from_png): CPU ms and peak
memory, each image in a fresh subprocess so one's high-water mark does not hide another's.

Images: the costly PNG of issue 18 (4096x4096 16-bit RGBA, ~150 KB, mostly blank), the
largest a default install accepts (2048x2048 8-bit RGBA), the same interlaced, and a
typical 256 px doodle. Prints one line each: bytes, outcome (a label of sorts: "bitmap" or
the refusal's reason), CPU ms (user + system, of the call only) and peak RSS growth over the
process before the call (MB).

    .venv/bin/python scripts/png_cost.py [--rounds 3] [--cases ...]

To measure another checkout (the code before the limits: copy this script and
tests/fixtures/pngs.py into it), run its copy of the script with this venv.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CASES = (
    "costly-4096-16bit-rgba",
    "costly-under-raised-limits",
    "allowed-2048-8bit-rgba",
    "interlaced-2048",
    "typical-256",
)
# The costly image again, with limits an operator raised to let it through: what decoding
# it costs now (the reduction after decoding), rather than what refusing it costs.
RAISED = {"costly-under-raised-limits": (4096 * 4096, 16)}


def _image(case: str) -> bytes:
    from tests.fixtures import pngs

    if case in ("costly-4096-16bit-rgba", "costly-under-raised-limits"):
        return pngs.costly_png()
    if case == "allowed-2048-8bit-rgba":
        return pngs.ring_png(2048, 8, pngs.RGBA)
    if case == "interlaced-2048":
        return pngs.interlaced_png(2048)
    if case == "typical-256":
        from core.drawings import render_png

        return render_png([[[0, 255, 255, 0, 0], [0, 0, 255, 255, 0]]])
    raise ValueError(f"unknown case {case}")


def _status_mb(field: str) -> float:
    """A memory figure of this process from /proc/self/status (VmRSS now, VmHWM its peak).
    Not ru_maxrss: that keeps the peak of the process this one was forked from (a test
    runner with torch loaded) across exec."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> None:
    """Start VmHWM afresh (Linux: "5" to clear_refs), so the peak is the call's, not that
    of making the image."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def measure(case: str) -> dict:
    """Run in the child: decode once, report the call's cost."""
    data = _image(case)
    from ml.raster import bitmap_from_png

    args: tuple = ()
    if case in RAISED:
        from core.png import PngLimits

        args = (PngLimits(*RAISED[case]),)

    bitmap_from_png(_image("typical-256"))  # warm: imports and first-call setup
    _reset_peak()
    before_rss = _status_mb("VmRSS")
    before = resource.getrusage(resource.RUSAGE_SELF)
    try:
        bitmap_from_png(data, *args)
        outcome = "bitmap"
    except ValueError as exc:
        outcome = f"refused: {exc}"
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu_ms = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000
    # The process's peak RSS since just before the call, over its RSS then.
    peak_growth = max(_status_mb("VmHWM") - before_rss, 0.0)
    return {
        "case": case,
        "bytes": len(data),
        "outcome": outcome,
        "cpu_ms": cpu_ms,
        "peak_mb": peak_growth,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes per image")
    parser.add_argument("--cases", nargs="+", choices=CASES, default=CASES)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child)))
        return
    for case in args.cases:
        runs = [
            json.loads(
                subprocess.run(
                    [sys.executable, __file__, "--child", case],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
            )
            for _ in range(args.rounds)
        ]
        cpu = sorted(r["cpu_ms"] for r in runs)[len(runs) // 2]
        peak = max(r["peak_mb"] for r in runs)
        first = runs[0]
        print(
            f"{case:24} {first['bytes'] / 1024:7.0f} KB  cpu {cpu:8.1f} ms (median)  "
            f"peak +{peak:7.1f} MB (max)  {first['outcome'][:110]}"
        )


if __name__ == "__main__":
    main()
