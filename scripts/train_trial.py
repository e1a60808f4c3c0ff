"""The quick fine-tuning trial on real Quick, Draw! data, and the time of 10,000-example runs.

Parent: the seed model (20 words). Five words it does not know are learned from 20 of their 25
simplified drawings each, with a replay sample of the 20 old words; held-out drawings measure
the new words' top-1 and the old words' drop against the parent.

Old-word data (../shared/data/quickdraw): simplified/<word>.ndjson, 25 drawings of each of the
20 words, split 15 replay / 10 held out; bitmaps/<word>.npy for 9 of them, rows that do not
duplicate the simplified drawings split into replay (up to the replay budget per word) and held
out (up to HOLDOUT_CAP per word, so the 4,000 books do not outweigh the rest).

    .venv/bin/python scripts/train_trial.py [--shared-data PATH] [--no-timing]

tests/integration/test_finetune_trial.py loads this file (scripts/ is not a package).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchkit

from benchkit.learning_data import bitmap_manifest, shuffled_npy_rows, simplified_bitmaps

from core.settings import Settings
from ml.datasets import read_ndjson
from ml.evaluate import score
from ml.network import QuickDrawNet, load_model, seed_classes, seed_weights_path
from ml.predict import Predictor
from ml.quality import assess
from ml.raster import rasterize_batch
from ml.train import TrainConfig, fine_tune, train_config

NEW_WORDS = ["bicycle", "car", "fish", "house", "sun"]
NEW_TRAIN = 20  # of the 25 drawings of each new word; the other 5 are held out
OLD_SIMPLIFIED_REPLAY = 15  # of the 25 simplified drawings of each old word; 10 held out
REPLAY_PER_WORD = 200  # as Settings.replay_per_word
HOLDOUT_CAP = 300  # held-out .npy rows per word
SPLIT_SEED = 7


@dataclass
class TrialData:
    train_bitmaps: np.ndarray
    train_labels: list[str]
    old_bitmaps: np.ndarray  # held out, old words
    old_labels: list[str]
    new_bitmaps: np.ndarray  # held out, new words
    new_labels: list[str]
    npy_pool: np.ndarray  # every usable .npy row (for timing runs)
    npy_pool_labels: list[str]


def seed_parent() -> tuple[QuickDrawNet, list[str]]:
    classes = seed_classes()
    return load_model(seed_weights_path().read_bytes(), len(classes)), classes


def load_trial_data(shared_data: Path, fold: int = 4) -> TrialData:
    """The trial's split; `fold` (0..4) picks which 5 of each new word's 25 drawings are held out
    (4: the last five)."""
    quickdraw = shared_data / "quickdraw"
    manifest = bitmap_manifest(quickdraw)
    rng = np.random.default_rng(SPLIT_SEED)
    train_b: list[np.ndarray] = []
    train_l: list[str] = []
    old_b: list[np.ndarray] = []
    old_l: list[str] = []
    pool_b: list[np.ndarray] = []
    pool_l: list[str] = []
    for word in seed_classes():
        drawings = simplified_bitmaps(quickdraw, word)
        order = rng.permutation(len(drawings))
        replay, held = order[:OLD_SIMPLIFIED_REPLAY], order[OLD_SIMPLIFIED_REPLAY:]
        train_b.append(drawings[replay])
        train_l += [word] * len(replay)
        old_b.append(drawings[held])
        old_l += [word] * len(held)
        rows = shuffled_npy_rows(quickdraw, manifest, word, len(drawings), rng)
        if rows is not None:
            budget = REPLAY_PER_WORD - len(replay)
            train_b.append(rows[:budget])
            train_l += [word] * len(rows[:budget])
            held_rows = rows[budget : budget + HOLDOUT_CAP]
            old_b.append(held_rows)
            old_l += [word] * len(held_rows)
            pool_b.append(rows)
            pool_l += [word] * len(rows)
    new_b: list[np.ndarray] = []
    new_l: list[str] = []
    for word in NEW_WORDS:
        drawings = simplified_bitmaps(quickdraw, word)
        held = np.zeros(len(drawings), dtype=bool)
        size = len(drawings) - NEW_TRAIN
        held[fold * size : (fold + 1) * size] = True
        train_b.append(drawings[~held])
        train_l += [word] * int((~held).sum())
        new_b.append(drawings[held])
        new_l += [word] * int(held.sum())
    return TrialData(
        train_bitmaps=np.concatenate(train_b),
        train_labels=train_l,
        old_bitmaps=np.concatenate(old_b),
        old_labels=old_l,
        new_bitmaps=np.concatenate(new_b),
        new_labels=new_l,
        npy_pool=np.concatenate(pool_b),
        npy_pool_labels=pool_l,
    )


def evaluate(model: QuickDrawNet, classes: list[str], bitmaps: np.ndarray, labels: list[str]):
    return score(Predictor(model, classes).predict(bitmaps), labels)


def run_trial(data: TrialData, config: TrainConfig = TrainConfig()) -> dict[str, Any]:  # noqa: B008
    parent, parent_classes = seed_parent()
    started = time.perf_counter()
    result = fine_tune(parent, parent_classes, data.train_bitmaps, data.train_labels, config)
    seconds = time.perf_counter() - started
    before = evaluate(parent, parent_classes, data.old_bitmaps, data.old_labels)
    after = evaluate(result.model, result.classes, data.old_bitmaps, data.old_labels)
    new = evaluate(result.model, result.classes, data.new_bitmaps, data.new_labels)
    drops = {
        w: round(before["per_word"][w]["top1"] - after["per_word"][w]["top1"], 4)
        for w in before["per_word"]
    }
    return {
        "train_examples": len(data.train_labels),
        "train_seconds": round(seconds, 2),
        "classes": result.classes,
        "old_heldout_n": before["n"],
        "old_top1_parent": before["top1"],
        "old_top1_child": after["top1"],
        "old_top1_drop": round(before["top1"] - after["top1"], 4),
        "old_worst_word_drop": max(drops.items(), key=lambda kv: kv[1]),
        "new_heldout_n": new["n"],
        "new_top1": new["top1"],
        "new_top3": new["top3"],
        "new_per_word": {w: v["top1"] for w, v in new["per_word"].items()},
        "history": result.history,
        "model": result.model,
    }


def time_10k(data: TrialData, config: TrainConfig) -> dict[str, Any]:
    """Fine-tune on 10,000 examples: every new-word training drawing, the rest .npy rows."""
    parent, parent_classes = seed_parent()
    new_mask = np.isin(data.train_labels, NEW_WORDS)
    rng = np.random.default_rng(SPLIT_SEED)
    pick = rng.choice(len(data.npy_pool), 10_000 - int(new_mask.sum()), replace=False)
    bitmaps = np.concatenate([data.train_bitmaps[new_mask], data.npy_pool[pick]])
    labels = [w for w, m in zip(data.train_labels, new_mask, strict=True) if m]
    labels += [data.npy_pool_labels[i] for i in pick]
    started = time.perf_counter()
    result = fine_tune(parent, parent_classes, bitmaps, labels, config)
    return {
        "examples": len(labels),
        "epochs": config.epochs,
        "seconds": round(time.perf_counter() - started, 2),
        "freeze_convs": config.freeze_convs,
        "max_shift": config.max_shift,
        "threads": config.threads,
        "final": result.history[-1] if result.history else None,
    }


def quality_false_flags(shared_data: Path, min_ink: float, max_ink: float) -> dict[str, Any]:
    """How many real simplified drawings (all words) `assess` flags."""
    flagged: dict[str, list[str]] = {}
    total = 0
    for path in sorted((shared_data / "quickdraw" / "simplified").glob("*.ndjson")):
        drawings = list(read_ndjson(path))
        for drawing, bitmap in zip(
            drawings, rasterize_batch(d.strokes for d in drawings), strict=True
        ):
            total += 1
            verdict = assess(bitmap, min_ink=min_ink, max_ink=max_ink)
            if verdict:
                flagged.setdefault(verdict, []).append(drawing.word)
    count = sum(len(v) for v in flagged.values())
    return {"drawings": total, "flagged": count, "rate": count / total, "by_verdict": flagged}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = os.environ.get("DOODLE_SHARED_DATA") or str(
        Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    parser.add_argument("--shared-data", default=default_data)
    parser.add_argument("--no-timing", action="store_true", help="skip the 10,000-example runs")
    parser.add_argument("--no-quality", action="store_true", help="skip the ink calibration")
    args = parser.parse_args(argv)
    shared = Path(args.shared_data)
    started = time.perf_counter()
    data = load_trial_data(shared)
    print(
        f"data: {len(data.train_labels)} training drawings, "
        f"{len(data.old_labels)} old / {len(data.new_labels)} new held out "
        f"({time.perf_counter() - started:.1f} s to load)"
    )
    configs = {
        "default (the product cycle's)": train_config(Settings.from_env()),
        "naive (no distillation, convs trained, unbalanced)": TrainConfig(
            freeze_convs=False, distill_weight=0.0, class_balance=0.0, imprint=False
        ),
    }
    for name, config in configs.items():
        figures = run_trial(data, config)
        figures.pop("model")
        figures.pop("classes")
        history = figures.pop("history")
        print(f"\ntrial, {name}:")
        print(json.dumps(figures, indent=1))
        print(
            "epochs:", [(h["epoch"], round(h["loss"], 3), round(h["accuracy"], 3)) for h in history]
        )
    if not args.no_timing:
        print("\n10,000 examples:")
        for config in (
            TrainConfig(threads=1),
            TrainConfig(threads=2),
            TrainConfig(threads=2, max_shift=1),
            TrainConfig(threads=2, freeze_convs=False),
        ):
            print(json.dumps(time_10k(data, config)))
    if not args.no_quality:
        print("\nquality false flags on real drawings:")
        for min_ink, max_ink in ((0.01, 0.6), (0.01, 0.55), (0.01, 0.5), (0.03, 0.6)):
            flags = quality_false_flags(shared, min_ink, max_ink)
            print(
                f"min_ink={min_ink} max_ink={max_ink}: {flags['flagged']}/{flags['drawings']}"
                f" ({100 * flags['rate']:.2f}%) {flags['by_verdict']}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
