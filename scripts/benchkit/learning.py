"""The learning benchmark's measurement: one fine-tuning cycle as the product runs it (the
cycle's replay sampling and training config from the settings), scored on held-out drawings,
and the figures over repeats (sets of new words x folds) with their spread."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchkit.learning_data import NewWords, OldWords
from core.settings import Settings
from db.datasets import Examples
from flows.finetune import select_training_set
from ml.network import QuickDrawNet
from ml.predict import Predictor
from ml.train import fine_tune, train_config


@dataclass
class Hits:
    """Per word: drawings tested, right at top-1, within the top 3."""

    n: dict[str, int]
    top1: dict[str, int]
    top3: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.n.values())

    def rate(self, which: str) -> float:
        hits = self.top1 if which == "top1" else self.top3
        return sum(hits.values()) / self.total if self.total else 0.0

    def word_rate(self, word: str, which: str = "top1") -> float:
        hits = self.top1 if which == "top1" else self.top3
        return hits[word] / self.n[word] if self.n.get(word) else 0.0


def hits(
    model: QuickDrawNet, classes: list[str], bitmaps: np.ndarray, labels: Sequence[str]
) -> Hits:
    out = Hits({}, {}, {})
    for prediction, truth in zip(Predictor(model, classes).predict(bitmaps), labels, strict=True):
        out.n[truth] = out.n.get(truth, 0) + 1
        out.top1[truth] = out.top1.get(truth, 0) + (prediction.label == truth)
        out.top3[truth] = out.top3.get(truth, 0) + any(w == truth for w, _ in prediction.top[:3])
    return out


def one_cycle(
    parent: QuickDrawNet,
    parent_classes: list[str],
    old: OldWords,
    new: NewWords,
    settings: Settings,
) -> dict[str, Any]:
    """Fine-tune as flows/finetune.py does on the old words' pool and the new words' training
    drawings; score the held-out drawings of both."""
    examples = Examples.concat([old.pool, new.train])
    train_set, new_words = select_training_set(
        examples,
        parent_classes,
        settings.new_word_min_examples,
        settings.replay_per_word,
        settings.train_seed,
    )
    started = time.perf_counter()
    result = fine_tune(
        parent, parent_classes, train_set.bitmaps, train_set.labels, train_config(settings)
    )
    seconds = time.perf_counter() - started
    return {
        "new_words": new_words,
        "train_examples": len(train_set),
        "train_seconds": round(seconds, 2),
        "new": hits(result.model, result.classes, new.test_bitmaps, new.test_labels),
        "old": hits(result.model, result.classes, old.test_bitmaps, old.test_labels),
    }


def spread(values: Sequence[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
        "std": round(statistics.pstdev(values), 4),
        "n": len(values),
    }


def _merge(parts: Sequence[Hits]) -> Hits:
    out = Hits({}, {}, {})
    for part in parts:
        for field in ("n", "top1", "top3"):
            mine, theirs = getattr(out, field), getattr(part, field)
            for word, count in theirs.items():
                mine[word] = mine.get(word, 0) + count
    return out


def summarise(repeats: Sequence[dict[str, Any]], before: Hits) -> dict[str, Any]:
    """Figures over `repeats` (each a one_cycle result with `set` and `fold`): pooled new-word
    top-1/top-3, old words before/after, and the spread over repeats."""
    new_all = _merge([r["new"] for r in repeats])
    old_all = _merge([r["old"] for r in repeats])
    old_before = before.rate("top1")
    words_old = sorted(before.n)

    def macro(h: Hits) -> float:
        return statistics.fmean(h.word_rate(w) for w in words_old)

    return {
        "repeats": len(repeats),
        "new_words": sorted(new_all.n),
        "new_test_drawings": new_all.total,
        "new_top1": round(new_all.rate("top1"), 4),
        "new_top3": round(new_all.rate("top3"), 4),
        "new_top1_spread": spread([r["new"].rate("top1") for r in repeats]),
        "new_top3_spread": spread([r["new"].rate("top3") for r in repeats]),
        "old_test_drawings": before.total,
        "old_top1_before": round(old_before, 4),
        "old_top1_after": round(old_all.rate("top1"), 4),
        "old_drop_points": round(100 * (old_before - old_all.rate("top1")), 2),
        "old_drop_spread_points": spread(
            [100 * (old_before - r["old"].rate("top1")) for r in repeats]
        ),
        # Every old word counts alike (11 of them have only 10 held-out drawings each).
        "old_macro_before": round(macro(before), 4),
        "old_macro_after": round(macro(old_all), 4),
        "old_macro_drop_points": round(100 * (macro(before) - macro(old_all)), 2),
        "train_seconds": spread([r["train_seconds"] for r in repeats]),
        "per_new_word": {
            w: {
                "n": new_all.n[w],
                "top1": round(new_all.word_rate(w), 4),
                "top3": round(new_all.word_rate(w, "top3"), 4),
            }
            for w in sorted(new_all.n)
        },
        "per_old_word": {
            w: {
                "n": before.n[w],
                "before": round(before.word_rate(w), 4),
                "after": round(old_all.word_rate(w), 4),
                "drop_points": round(100 * (before.word_rate(w) - old_all.word_rate(w)), 1),
            }
            for w in words_old
        },
    }


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def markdown(summaries: dict[str, dict[str, Any]]) -> str:
    """The headline table (one row per group of sets) and the per-word tables."""
    lines = [
        "| new words | repeats | new top-1 % (median, min-max) | new top-3 % "
        "| old top-1 % before -> after | old drop, points (median, min-max) "
        "| old drop, per-word mean |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, s in summaries.items():
        t1, drop = s["new_top1_spread"], s["old_drop_spread_points"]
        lines.append(
            f"| {name} | {s['repeats']} | {_pct(s['new_top1'])} ({_pct(t1['median'])}, "
            f"{_pct(t1['min'])}-{_pct(t1['max'])}) | {_pct(s['new_top3'])} | "
            f"{_pct(s['old_top1_before'])} -> {_pct(s['old_top1_after'])} | "
            f"{s['old_drop_points']:.2f} ({drop['median']:.2f}, "
            f"{drop['min']:.2f}-{drop['max']:.2f}) | "
            f"{s['old_macro_drop_points']:.2f} |"
        )
    for name, s in summaries.items():
        words = s["per_new_word"]
        lines += ["", f"New words, {name} (each word's held-out drawings over all folds):", ""]
        lines += ["| word | n | top-1 % | top-3 % |", "|---|---|---|---|"]
        lines += [
            f"| {w} | {v['n']} | {_pct(v['top1'])} | {_pct(v['top3'])} |" for w, v in words.items()
        ]
    if summaries:
        name, s = next(iter(summaries.items()))
        lines += ["", f"Old words, {name} (after: over all repeats):", ""]
        lines += ["| word | n | before % | after % | drop, points |", "|---|---|---|---|---|"]
        lines += [
            f"| {w} | {v['n']} | {_pct(v['before'])} | {_pct(v['after'])} "
            f"| {v['drop_points']:.1f} |"
            for w, v in s["per_old_word"].items()
        ]
    return "\n".join(lines)
