"""Learning benchmark: does one fine-tuning cycle, with the default settings, teach new words
from 25 player drawings each without costing the 20 starting words?

Parent: the seed model (ml/seed). New words: `--sets` disjoint sets of `--set-size` words drawn
with a fixed seed from the words of ../shared/data/quickdraw/simplified the seed does not know.
Each new word's 25 drawings are split into `--folds` folds: one cycle trains on the other folds
(20 drawings, as the cycle gets them after the golden fifth is held out) and the held-out fold
is tested; every fold takes its turn. Old words: the cycle's replay sample comes from a pool of
their drawings; other drawings of theirs, never trained on, are tested before and after.

The cycle is the product's: `flows.finetune.select_training_set` (replay sampling, new-word
threshold) and `ml.train.train_config(Settings.from_env())` (so DOODLE_TRAIN_* variables change
the run as they change the product's), one torch thread.

Set 1 (the first) is the set the training defaults were tuned on; the headline is the other
sets. Writes var/bench/learning.json and prints markdown tables.

    .venv/bin/python scripts/learning_bench.py [--quick] [--sets 4] [--folds 5] [--only-set K]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchkit import REPO_ROOT
from benchkit.inputs import shared_data_dir
from benchkit.learning import hits, markdown, one_cycle, summarise
from benchkit.learning_data import (
    new_word_sets,
    new_words_fold,
    old_words,
    simplified_bitmaps,
    unknown_words,
)

from core.settings import Settings
from ml.network import load_model, seed_classes, seed_weights_path
from ml.train import train_config

WORDS_SEED = 2026  # draws the sets of new words
NPY_POOL = 400  # old words' .npy rows the replay sample may choose from (per word)
HOLDOUT_CAP = 300  # old words' held-out .npy rows (per word)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=4, help="sets of new words (the first: tuning)")
    parser.add_argument("--set-size", type=int, default=5)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--only-set", type=int, help="run only this set (1-based)")
    parser.add_argument("--quick", action="store_true", help="2 sets (tuning + 1), 2 folds each")
    parser.add_argument("--out", default=str(REPO_ROOT / "var" / "bench" / "learning.json"))
    args = parser.parse_args(argv)
    sets = 2 if args.quick else args.sets
    folds_run = range(2) if args.quick else range(args.folds)
    settings = Settings.from_env()
    config = train_config(settings)
    quickdraw = shared_data_dir() / "quickdraw"
    started = time.perf_counter()
    classes = seed_classes()
    parent = load_model(seed_weights_path().read_bytes(), len(classes))
    old = old_words(quickdraw, classes, NPY_POOL, HOLDOUT_CAP)
    word_sets = new_word_sets(unknown_words(quickdraw, classes), sets, args.set_size, WORDS_SEED)
    chosen = [args.only_set - 1] if args.only_set else list(range(sets))
    before = hits(parent, classes, old.test_bitmaps, old.test_labels)
    print(
        f"old words: pool {len(old.pool)}, {before.total} held out; sets {word_sets}; "
        f"config {config}; replay_per_word {settings.replay_per_word}",
        file=sys.stderr,
    )
    repeats: dict[int, list[dict[str, Any]]] = {}
    for k in chosen:
        drawings = {w: simplified_bitmaps(quickdraw, w) for w in word_sets[k]}
        for fold in folds_run:
            new = new_words_fold(drawings, word_sets[k], args.folds, fold)
            result = one_cycle(parent, classes, old, new, settings)
            result.update(set=k + 1, fold=fold)
            repeats.setdefault(k, []).append(result)
            print(
                f"set {k + 1} fold {fold}: new top-1 {result['new'].rate('top1'):.3f}, "
                f"old {result['old'].rate('top1'):.4f} (before {before.rate('top1'):.4f}), "
                f"{result['train_examples']} examples, {result['train_seconds']} s",
                file=sys.stderr,
            )
    summaries: dict[str, dict[str, Any]] = {}
    held_back = [r for k, rs in repeats.items() if k > 0 for r in rs]
    if held_back:
        summaries[f"sets {', '.join(str(k + 1) for k in repeats if k > 0)} (not tuned on)"] = (
            summarise(held_back, before)
        )
    if 0 in repeats:
        summaries["set 1 (tuned on)"] = summarise(repeats[0], before)
    report = {
        "command": " ".join(["scripts/learning_bench.py", *(argv or sys.argv[1:])]),
        "train_config": config.as_dict(),
        "replay_per_word": settings.replay_per_word,
        "new_word_min_examples": settings.new_word_min_examples,
        "word_sets": word_sets,
        "folds": args.folds,
        "folds_run": list(folds_run),
        "summaries": summaries,
        "repeats": [
            {
                "set": r["set"],
                "fold": r["fold"],
                "train_examples": r["train_examples"],
                "train_seconds": r["train_seconds"],
                "new_top1": round(r["new"].rate("top1"), 4),
                "new_top3": round(r["new"].rate("top3"), 4),
                "old_top1": round(r["old"].rate("top1"), 4),
            }
            for rs in repeats.values()
            for r in rs
        ],
        "seconds": round(time.perf_counter() - started, 1),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(markdown(summaries))
    print(f"\n{report['seconds']} s; JSON in {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
