"""The product learning benchmark's figures: per repetition (one fresh product, one cycle), per
set of new words (over its folds) and overall, and the markdown tables printed.

"served": what players get after the cycle, the production model (the seed's again when the
gate kept the candidate out). "learnt": the cycle's candidate, promoted or not.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any


def _pct(x: float | None) -> float | None:
    return None if x is None else round(100 * x, 1)


def repetition_figures(r: dict[str, Any]) -> dict[str, Any]:
    """The headline figures of one repetition (percent, points, seconds)."""
    cycle = r["cycle"]
    promoted = bool(cycle.get("promoted"))
    learnt_new = r.get("candidate_new", r["new_after"])
    learnt_old = r.get("candidate_old", r["old_after"])
    classes = cycle.get("new_words") or []
    relabel = cycle.get("relabel") or {}
    before = r["old_before"]["top1"]
    return {
        "set": r["set"],
        "fold": r["fold"],
        "words": len(r["words"]),
        "became_classes": len(classes),
        "promoted": promoted,
        "reasons": cycle.get("reasons") or ([cycle["error"]] if "error" in cycle else []),
        "new_top1": _pct(r["new_after"]["top1"]),
        "new_top3": _pct(r["new_after"]["top3"]),
        "learnt_new_top1": _pct(learnt_new["top1"]),
        "learnt_new_top3": _pct(learnt_new["top3"]),
        "old_before": _pct(before),
        "old_after": _pct(r["old_after"]["top1"]),
        "old_drop_points": round(100 * (before - r["old_after"]["top1"]), 2),
        "learnt_old_drop_points": round(100 * (before - learnt_old["top1"]), 2),
        "accepted": relabel.get("accepted", 0),
        "review": relabel.get("review", 0),
        "undecided": relabel.get("undecided", 0),
        "cycle_seconds": r["cycle_wall_seconds"],
        "cycle_timings": cycle.get("timings", {}),
    }


def _spread(values: Sequence[float]) -> dict[str, float]:
    return {
        "mean": round(statistics.fmean(values), 2),
        "min": round(min(values), 2),
        "max": round(max(values), 2),
    }


SPREAD_KEYS = (
    "new_top1",
    "new_top3",
    "learnt_new_top1",
    "learnt_new_top3",
    "old_before",
    "old_after",
    "old_drop_points",
    "learnt_old_drop_points",
    "cycle_seconds",
)


def summary(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Figures over repetitions: means with min-max, and totals of counts."""
    out: dict[str, Any] = {"repetitions": len(rows)}
    for key in SPREAD_KEYS:
        out[key] = _spread([row[key] for row in rows])
    for key in ("words", "became_classes", "accepted", "review", "undecided"):
        out[key] = sum(row[key] for row in rows)
    out["promoted"] = sum(row["promoted"] for row in rows)
    return out


def summaries(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per set (over its folds), then overall."""
    out = {}
    for set_no in sorted({row["set"] for row in rows}):
        out[f"set {set_no}"] = summary([row for row in rows if row["set"] == set_no])
    if len(out) > 1:
        out["overall"] = summary(rows)
    return out


def _mm(s: dict[str, float]) -> str:
    return f"{s['mean']:.1f} ({s['min']:.1f}-{s['max']:.1f})"


def markdown(rows: Sequence[dict[str, Any]], sums: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| repetition | classes | promoted | new top-1 % | new top-3 % | learnt top-1 % "
        "(top-3) | old top-1 % before -> after | old drop, points | relabel acc/rev/und "
        "| cycle s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| set {r['set']} fold {r['fold']} | {r['became_classes']}/{r['words']} "
            f"| {'yes' if r['promoted'] else 'no'} | {r['new_top1']} | {r['new_top3']} "
            f"| {r['learnt_new_top1']} ({r['learnt_new_top3']}) "
            f"| {r['old_before']} -> {r['old_after']} | {r['old_drop_points']:.2f} "
            f"| {r['accepted']}/{r['review']}/{r['undecided']} | {r['cycle_seconds']:.1f} |"
        )
    for name, s in sums.items():
        lines.append(
            f"| **{name}** ({s['repetitions']}) | {s['became_classes']}/{s['words']} "
            f"| {s['promoted']}/{s['repetitions']} | {_mm(s['new_top1'])} "
            f"| {_mm(s['new_top3'])} "
            f"| {_mm(s['learnt_new_top1'])} ({s['learnt_new_top3']['mean']}) "
            f"| {s['old_before']['mean']} -> {s['old_after']['mean']} "
            f"| {_mm(s['old_drop_points'])} | {s['accepted']}/{s['review']}/{s['undecided']} "
            f"| {_mm(s['cycle_seconds'])} |"
        )
    reasons = [
        f"- set {r['set']} fold {r['fold']}: {'; '.join(map(str, r['reasons'])) or '-'}"
        for r in rows
    ]
    return "\n".join([*lines, "", "Gate's reasons:", *reasons])
