"""Product learning benchmark: what a player gets when other players draw new words, through
the whole product: `doodle run` on a fresh stack, drawings posted to `POST /v1/recognitions`,
one cycle of `doodle flows run flywheel`, then `doodle eval` on drawings never posted.

scripts/learning_bench.py hands drawings to the trainer directly; this one goes through the
API, the workers, the relabelling, the dataset the cycle builds (with its provisional test
set held back) and the gate, as users do.

Each repetition (a set of new words x a fold) runs on a fresh product, stopped at its end:
- `--services embedded` (default): `doodle run` starts embedded Postgres and Redis in a
  temporary home; `--services servers`: a new database on the machine's Postgres (dropped
  afterwards) and a Redis db of its own (flushed).
- New words: `--set-size 5`: the learning benchmark's sets (fixed seed, words the seed does
  not know); `--set-size 10`: 3 pairs of words alike in shape and 4 others
  (benchkit/product_learning_data.py ALIKE_PAIRS).
- Each word's 25 drawings: 20 posted by simulated players (4 each), 5 held out; fold k holds
  out the k-th block of 5 (`--folds K` runs folds 0..K-1).
- Old words: Google's bitmaps of 9 of the 20 starting words, each file's last 100 rows
  (never shipped nor imported),
  scored before the cycle and after.

Writes var/bench/product_learning.json and prints a markdown table.

    .venv/bin/python scripts/product_learning_bench.py --quick
    .venv/bin/python scripts/product_learning_bench.py --set-size 5 --sets 2 --folds 1
    .venv/bin/python scripts/product_learning_bench.py --set-size 10 --folds 1
    .venv/bin/python scripts/product_learning_bench.py --services servers --quick
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchkit import REPO_ROOT
from benchkit.inputs import seed_words, shared_data_dir
from benchkit.product_learning import Plan, run_once
from benchkit.product_learning_data import (
    ALIKE_PAIRS,
    FOLD_COUNT,
    new_candidates,
    word_sets,
    write_old_word_rows,
)
from benchkit.product_learning_report import markdown, repetition_figures, summaries


def _stop_on_signals() -> None:
    """SIGTERM / SIGHUP unwind like Ctrl-C, so every stack started is stopped."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", choices=["embedded", "servers"], default="embedded")
    parser.add_argument("--set-size", type=int, choices=[5, 10], default=5)
    parser.add_argument("--sets", type=int, default=2, help="sets of new words (disjoint)")
    parser.add_argument("--only-set", type=int, help="run only this set (1-based)")
    parser.add_argument(
        "--folds", type=int, default=2, help=f"folds run (of {FOLD_COUNT}), each a repetition"
    )
    parser.add_argument("--quick", action="store_true", help="one fold of one set")
    parser.add_argument("--junk", type=Path, help="ndjson of drawings also posted, as junk")
    parser.add_argument("--pg-server-url", default="postgresql://root@127.0.0.1:5432/test")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument(
        "--cycle-timeout", type=float, default=1800, help="seconds before a cycle is killed"
    )
    parser.add_argument(
        "--product", type=Path, help="run this checkout of the product (e.g. a git worktree)"
    )
    parser.add_argument("--keep", action="store_true", help="keep each stack's logs")
    parser.add_argument(
        "--out", type=Path, default=REPO_ROOT / "var" / "bench" / "product_learning.json"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.folds <= FOLD_COUNT:
        parser.error(f"--folds is 1 to {FOLD_COUNT}")
    return args


def _commit(checkout: Path) -> str:
    result = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=checkout, capture_output=True, text=True
    )
    return result.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    _stop_on_signals()
    quickdraw = shared_data_dir() / "quickdraw"
    sets = word_sets(new_candidates(quickdraw, seed_words()), args.sets, args.set_size)
    chosen = [args.only_set] if args.only_set else list(range(1, len(sets) + 1))
    folds = 1 if args.quick else args.folds
    if args.quick:
        chosen = chosen[:1]
    junk = []
    if args.junk:
        junk = [x for x in args.junk.read_text(encoding="utf-8").splitlines() if x.strip()]
    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="doodle-plb-old-") as old_dir:
        old_counts = write_old_word_rows(quickdraw, Path(old_dir))
        old_npy = sorted(Path(old_dir).glob("*.npy"))
        print(f"sets {sets}; old words' test rows {old_counts}", file=sys.stderr, flush=True)
        try:
            for set_no in chosen:
                for fold in range(folds):
                    plan = Plan(
                        args.services,
                        set_no,
                        sets[set_no - 1],
                        fold,
                        quickdraw,
                        old_npy,
                        junk,
                        args.pg_server_url,
                        args.redis_url,
                        args.cycle_timeout,
                        args.keep,
                        args.product,
                    )
                    result = run_once(plan)
                    results.append(result)
                    rows.append(repetition_figures(result))
                    print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
        except KeyboardInterrupt:
            print("interrupted: reporting the repetitions done", file=sys.stderr)
    sums = summaries(rows) if rows else {}
    report = {
        "command": " ".join(["scripts/product_learning_bench.py", *(argv or sys.argv[1:])]),
        "commit": _commit(args.product or REPO_ROOT),
        "product": str(args.product or REPO_ROOT),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "services": args.services,
        "set_size": args.set_size,
        "word_sets": sets,
        "alike_pairs": [list(p) for p in ALIKE_PAIRS] if args.set_size == 10 else [],
        "folds_of": FOLD_COUNT,
        "old_test_rows": old_counts,
        "summaries": sums,
        "repetitions": rows,
        "raw": results,
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    if rows:
        print(markdown(rows, sums))
    print(f"\n{report['seconds']} s; JSON in {args.out}", file=sys.stderr)
    return 0 if rows else 1


if __name__ == "__main__":
    raise SystemExit(main())
