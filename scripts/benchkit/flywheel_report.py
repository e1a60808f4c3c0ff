"""The flywheel benchmark's report: growth fits per stage, the text table, the machine block
(scripts/flywheel_bench.py). The fits' arithmetic is `benchkit.stats`.

Unit-tested in tests/unit/test_flywheel_bench.py.
"""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Sequence
from typing import Any

from benchkit.stats import Fit, growth_exponent, linear_fit, median_min_max

STAGES = ("relabel_s", "finetune_s", "evaluate_s", "cycle_s")


def describe_growth(fit: Fit, exponent: float) -> str:
    if math.isnan(exponent):
        return "n/a"
    if exponent < 0.2:
        shape = "flat"
    elif exponent < 0.8:
        shape = "sublinear (fixed cost + linear part)"
    elif exponent <= 1.2:
        shape = "linear"
    else:
        shape = "superlinear"
    return f"{shape}: {fit.intercept:.1f} s + {fit.per_1000:.2f} s per 1,000 doodles"


def fit_stages(results: Sequence[dict[str, Any]], stages: Sequence[str] = STAGES) -> dict:
    """Per stage: the linear fit over the results' `n` and `timings[stage]`, and the exponent."""
    out: dict[str, Any] = {}
    points = [r for r in results if r.get("timings")]
    for stage in stages:
        pairs = [(r["n"], r["timings"][stage]) for r in points if stage in r["timings"]]
        if len({x for x, _ in pairs}) < 2:
            continue
        xs, ys = [float(x) for x, _ in pairs], [float(y) for _, y in pairs]
        fit = linear_fit(xs, ys)
        exponent = growth_exponent(xs, ys)
        out[stage] = {
            "intercept_s": round(fit.intercept, 3),
            "s_per_1000": round(fit.per_1000, 3),
            "r2": None if math.isnan(fit.r2) else round(fit.r2, 4),
            "exponent": None if math.isnan(exponent) else round(exponent, 3),
            "growth": describe_growth(fit, exponent),
        }
    return out


def summarize_size(n: int, runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The repeats of one size: median (min-max) timings, and the typical run's details."""
    timings = median_min_max([r["timings"] for r in runs])
    cpu = median_min_max([r["cpu_seconds"] for r in runs])
    # The run whose cycle time is the median stands for the size (its breakdown, outcome).
    typical = sorted(runs, key=lambda r: r["timings"]["cycle_s"])[(len(runs) - 1) // 2]
    keep = (
        "training_examples",
        "new_words",
        "promoted",
        "reasons",
        "golden_top1",
        "golden_n",
        "relabel",
        "breakdown",
        "db_after",
        "setup",
    )
    return {
        "n": n,
        "timings": {k: v["median"] for k, v in timings.items()},
        "timings_spread": timings,
        "cpu_seconds": {k: v["median"] for k, v in cpu.items()},
        "typical_repeat": typical["repeat"],
        **{k: typical.get(k) for k in keep},
        "runs": [
            {
                k: r.get(k)
                for k in (
                    "repeat",
                    "timings",
                    "cpu_seconds",
                    "load_average_before",
                    "load_average_after",
                    "training_examples",
                    "promoted",
                )
            }
            for r in runs
        ],
    }


def training_settings() -> dict[str, Any]:
    """The defaults of the settings that shape a cycle's work (the environment may set them)."""
    from core.settings import Settings

    defaults = Settings()
    return {
        "train_epochs": defaults.train_epochs,
        "replay_per_word": defaults.replay_per_word,
        "new_word_min_examples": defaults.new_word_min_examples,
        "golden_fraction": defaults.golden_fraction,
        "train_new_rows_only": defaults.train_new_rows_only,
    }


def format_table(results: Sequence[dict[str, Any]], fits: dict[str, Any]) -> str:
    def span(r: dict[str, Any], key: str) -> str:
        spread = r.get("timings_spread", {}).get(key)
        if not spread:
            return f"{r['timings'].get(key, math.nan):.1f}"
        if spread["min"] == spread["max"]:
            return f"{spread['median']:.1f}"
        return f"{spread['median']:.1f} ({spread['min']:.1f}-{spread['max']:.1f})"

    head = (
        f"{'doodles':>8} {'relabel s':>17} {'finetune s':>17} {'evaluate s':>17} "
        f"{'other s':>8} {'cycle s':>17} {'cycle cpu s':>11} {'train set':>9} "
        f"{'accepted':>8} {'review':>6} {'new words':>9} {'promoted':>8} {'golden top-1 c/p':>16}"
    )
    lines = [
        "median (min-max) wall seconds over the repeats; cpu: this process, all threads",
        head,
        "-" * len(head),
    ]
    for r in results:
        relabel = r.get("relabel") or {}
        top1 = r.get("golden_top1") or {}
        lines.append(
            f"{r['n']:>8,} {span(r, 'relabel_s'):>17} {span(r, 'finetune_s'):>17} "
            f"{span(r, 'evaluate_s'):>17} {span(r, 'other_s'):>8} {span(r, 'cycle_s'):>17} "
            f"{r.get('cpu_seconds', {}).get('cycle_s', math.nan):>11.1f} "
            f"{r.get('training_examples') or 0:>9,} {relabel.get('accepted', 0):>8,} "
            f"{relabel.get('review', 0):>6,} {len(r.get('new_words') or []):>9} "
            f"{'yes' if r.get('promoted') else 'no':>8} "
            f"{top1.get('candidate', math.nan):>7.4f}/{top1.get('production', math.nan):<7.4f}"
        )
    if fits:
        lines += ["", "growth (least squares t = a + b*N over the sizes; k: t ~ N^k, ends)"]
        for stage, f in fits.items():
            r2 = "n/a" if f["r2"] is None else f"{f['r2']:.3f}"
            lines.append(
                f"  {stage:<11} a = {f['intercept_s']:7.2f} s  b = {f['s_per_1000']:6.2f} s/1,000"
                f"  R2 = {r2:>5}  k = {f['exponent']}  -> {f['growth']}"
            )
    for r in results:
        lines += [
            "",
            f"where the time goes at N = {r['n']:,}, run {r.get('typical_repeat')} "
            "(wrapped calls: wall s, cpu s, calls):",
        ]
        for name, v in r["breakdown"].items():
            lines.append(
                f"  {v['seconds']:8.2f} s {v.get('cpu_seconds', math.nan):8.2f} s "
                f"{v['calls']:>7,}x  {name}"
            )
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    import torch

    return {
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
