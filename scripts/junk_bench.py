"""Benchmark: does junk go to review, and does it ever train? The relabel flow's judge on
synthetic junk mixed with real drawings.

    .venv/bin/python scripts/junk_bench.py            # about 20 s
    .venv/bin/python scripts/junk_bench.py --new-words 80 --scribbles 800

The judge is the product's (`flows.relabel.Judge` with the default settings and the seed
model), its references the shipped sample of the 20 starting words (data/quickdraw, what a
default install imports). Cases:

- known prompt: synthetic scribbles (scripts/benchkit/junk.py) and dots, each under one of
  the 20 words; real drawings of a starting word posted under another starting word; and,
  as the control, the same real drawings under their own word;
- new prompt: groups of a word the model does not know (its 25 real drawings from
  ../shared/data) with 2 scribbles, 1 dot and 1 real drawing of a starting word mixed in,
  judged together as the flow judges a word's doodles.

Real drawings of the starting words are the first 50 of Google's bitmaps' last 100 rows
(never shipped nor imported). Reported: the share of each case sent to review, accepted
(it would train), left undecided. Results go to var/bench/junk.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import REPO_ROOT
from benchkit.inputs import seed_words, shared_data_dir
from benchkit.junk import dots, scribbles
from benchkit.learning_data import bitmap_manifest, simplified_bitmaps, unknown_words

from core.settings import Settings
from db.datasets import Examples
from db.labels import Candidate
from flows.relabel import Decision, Judge
from ml.datasets import read_bitmaps
from ml.network import load_model, seed_weights_path
from ml.raster import rasterize_batch

UNSEEN_ROWS = slice(-100, -50)  # rows no default install imports (data/README.md)


def _candidates(bitmaps: np.ndarray, prompts: list[str]) -> list[Candidate]:
    return [
        Candidate(id=uuid.uuid4(), word=w, bitmap=b.tobytes())
        for b, w in zip(bitmaps, prompts, strict=True)
    ]


def _shares(decisions: list[Decision]) -> dict[str, float | int]:
    n = len(decisions)
    review = sum(d.review is not None for d in decisions)
    accepted = sum(d.label is not None for d in decisions)
    return {
        "n": n,
        "review": round(review / n, 4),
        "accepted": round(accepted / n, 4),
        "undecided": round((n - review - accepted) / n, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scribbles", type=int, default=400)
    parser.add_argument("--new-words", type=int, default=60)
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--out", default=str(REPO_ROOT / "var" / "bench" / "junk.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.perf_counter()
    quickdraw = shared_data_dir() / "quickdraw"
    rng = np.random.default_rng(args.seed)
    known = seed_words()
    settings = Settings.from_env()  # DOODLE_RELABEL_* variables change the judge
    model = load_model(seed_weights_path().read_bytes(), len(known))
    sample = [(w, simplified_bitmaps(REPO_ROOT / "data" / "quickdraw", w)) for w in known]
    references = Examples(
        [uuid.uuid4() for _, b in sample for _ in b],
        np.concatenate([b for _, b in sample]),
        [w for w, b in sample for _ in b],
    )
    judge = Judge(model, known, settings, references=references, accepted=Examples.empty())

    scribble_bitmaps = rasterize_batch(
        strokes for _, strokes in scribbles(args.scribbles, args.seed)
    )
    dot_bitmaps = rasterize_batch(dots(args.scribbles // 4, args.seed))
    real: list[tuple[str, np.ndarray]] = [
        (w, read_bitmaps(quickdraw / "bitmaps", w)[UNSEEN_ROWS]) for w in bitmap_manifest(quickdraw)
    ]
    real_bitmaps = np.concatenate([b for _, b in real])
    real_words = [w for w, b in real for _ in b]
    wrong = [
        known[(known.index(w) + int(rng.integers(1, len(known)))) % len(known)] for w in real_words
    ]

    def under_known(bitmaps: np.ndarray) -> list[str]:
        return [known[i] for i in rng.integers(0, len(known), len(bitmaps))]

    cases = {
        "known prompt: scribbles": judge(
            _candidates(scribble_bitmaps, under_known(scribble_bitmaps))
        ),
        "known prompt: dots": judge(_candidates(dot_bitmaps, under_known(dot_bitmaps))),
        "known prompt: another starting word's drawing": judge(_candidates(real_bitmaps, wrong)),
        "known prompt: its own drawings (control)": judge(_candidates(real_bitmaps, real_words)),
    }

    new_real: list[Decision] = []
    new_junk: dict[str, list[Decision]] = {"scribble": [], "dot": [], "starting word": []}
    words = unknown_words(quickdraw, known)
    chosen = [words[i] for i in rng.permutation(len(words))[: args.new_words]]
    for word in chosen:
        drawings = simplified_bitmaps(quickdraw, word)
        s = rng.choice(len(scribble_bitmaps), 2, replace=False)
        k = int(rng.integers(len(real_bitmaps)))
        d = int(rng.integers(len(dot_bitmaps)))
        group = np.concatenate([drawings, scribble_bitmaps[s], dot_bitmaps[[d]], real_bitmaps[[k]]])
        decisions = judge(_candidates(group, [word] * len(group)))
        n = len(drawings)
        new_real += decisions[:n]
        new_junk["scribble"] += decisions[n : n + 2]
        new_junk["dot"].append(decisions[n + 2])
        new_junk["starting word"].append(decisions[n + 3])
    for kind, decisions in new_junk.items():
        cases[f"new prompt: {kind}"] = decisions
    cases["new prompt: its own drawings (control)"] = new_real

    results = {name: _shares(decisions) for name, decisions in cases.items()}
    junk = [d for name, ds in cases.items() if "control" not in name for d in ds]
    results["all junk"] = _shares(junk)
    reasons = Counter(
        (d.review or "").split(":")[0] for name, ds in cases.items() for d in ds if d.review
    )
    report = {
        "results": results,
        "review_reasons": dict(reasons),
        "new_words": chosen,
        "settings": {
            "relabel_doubt_probability": settings.relabel_doubt_probability,
            "relabel_outlier_fence": settings.relabel_outlier_fence,
            "relabel_min_group": settings.relabel_min_group,
            "relabel_accept_confidence": settings.relabel_accept_confidence,
            "relabel_reject_confidence": settings.relabel_reject_confidence,
            "min_ink_fraction": settings.min_ink_fraction,
            "max_ink_fraction": settings.max_ink_fraction,
        },
        "seconds": round(time.perf_counter() - started, 1),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print("| case | n | to review % | accepted (trains) % | undecided % |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['n']} | {100 * r['review']:.1f} | {100 * r['accepted']:.1f} | "
            f"{100 * r['undecided']:.1f} |"
        )
    print(f"\n{report['seconds']} s; {out}")


if __name__ == "__main__":
    main()
