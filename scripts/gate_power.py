"""How often the promotion gate (ml.gate) blocks a candidate whose old words truly fell by
D points, on simulated paired outcomes.

    .venv/bin/python scripts/gate_power.py [--runs 1000]
    .venv/bin/python scripts/gate_power.py --default-install [--measure] [--runs 2000]

Without options: 20 old words of 25 test drawings (500), production top-1 0.94, the two
versions disagreeing on 2 to 11% of the drawings; one line a churn level, the share blocked
at true falls of 0, 1.6, 2 and 5 points, for overall tolerances
(DOODLE_GATE_MAX_OVERALL_DROP) of 0, 1 and 2 points.

--default-install: the old words' test set a default install (`make run`: the shipped
data/quickdraw sample) gives the first cycle, word by word, computed as the product
computes it: the importer's drawings and ids, the golden hash split, the fine-tune's
replay sample (`DOODLE_REPLAY_PER_WORD`); the rest of each word is never trained on
(db.evaluation_sets). The old words' test set of the golden split alone is printed beside
it. Production's per-word top-1 is the seed's on those drawings. --measure fine-tunes the
seed as a cycle would (the default install's training set plus 5 new words of 20 player
drawings, from ../shared/data/quickdraw) and measures how often the two versions disagree
on the old words' test drawings (its churn beside its fall: 2c/n); the churn rates
simulated are then the measured one, 3, 5 and 8% (--rates: others).
Prints the share blocked at true falls of 0, 1, 2 and 3 points for each gate setting.
"""

from __future__ import annotations

import argparse
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from db.datasets import Examples
from ml.gate import GatePolicy, PairedScores, decide

PRODUCTION_TOP1 = 0.94
FALLS = (0.0, 1.6, 2.0, 5.0)
TOLERANCES = (0.0, 0.01, 0.02)


def blocked_share(
    rng: random.Random, fall: float, flip: float, tolerance: float, runs: int
) -> float:
    """`flip`: the chance a drawing production gets right turns wrong (and as many turn
    right), before the fall's extra losses."""
    p = PRODUCTION_TOP1
    policy = GatePolicy(max_overall_drop=tolerance, require_gain=False)
    known = {f"w{w}" for w in range(20)}
    blocked = 0
    for _ in range(runs):
        words, cand, prod = [], [], []
        for word in sorted(known):
            for _ in range(25):
                right = rng.random() < p
                lose, gain = flip + fall / 100 / p, flip * p / (1 - p)
                cand.append(rng.random() >= lose if right else rng.random() < gain)
                prod.append(right)
                words.append(word)
        scores = PairedScores(words, cand, prod)
        decision = decide(scores, known_words=known, candidate_words=known, policy=policy)
        blocked += not decision.promote
    return blocked / runs


def simulate_fall(
    rng: random.Random,
    sizes: dict[str, int],
    production_top1: dict[str, float],
    fall: float,
    disagreement: float,
    policy: GatePolicy,
    runs: int,
) -> float:
    """The share of `runs` simulated candidates the gate blocks, on the words' test sets of
    `sizes` drawings, production right on each word's drawing with its `production_top1`;
    the candidate truly `fall` points (a fraction) below production on every word, the two
    versions disagreeing on about `disagreement` of the drawings (the churn: as many lost
    as gained) plus the fall's own losses."""
    known = set(sizes)
    blocked = 0
    for _ in range(runs):
        words: list[str] = []
        cand: list[bool] = []
        prod: list[bool] = []
        for word in sorted(known):
            p = production_top1[word]
            # Churn: as many right-to-wrong as wrong-to-right flips, about `disagreement`
            # of the drawings in all; the fall takes `fall` more from the right ones.
            lose = min(1.0, (disagreement / 2 + fall) / p)
            gain = min(1.0, disagreement / 2 / (1 - p)) if p < 1 else 0.0
            for _ in range(sizes[word]):
                right = rng.random() < p
                cand.append(rng.random() >= lose if right else rng.random() < gain)
                prod.append(right)
                words.append(word)
        decision = decide(
            PairedScores(words, cand, prod), known_words=known, candidate_words=known, policy=policy
        )
        blocked += not decision.promote
    return blocked / runs


@dataclass(frozen=True)
class DefaultInstall:
    """The first cycle's old-word test drawings on a default install, per word."""

    golden: Counter[str]
    untrained: Counter[str]
    production_top1: dict[str, float]  # the seed's, on those drawings
    test_bitmaps: np.ndarray  # (N, 28, 28) uint8: the test drawings
    test_labels: list[str]
    training: Examples  # the replay sample the cycle trains on

    @property
    def sizes(self) -> dict[str, int]:
        return {w: self.golden[w] + self.untrained[w] for w in self.production_top1}


def default_install(
    replay_per_word: int, golden_fraction: float, train_seed: int
) -> DefaultInstall:
    from cli.dev import SAMPLE_BITMAPS, SAMPLE_DATA
    from db.datasets import drawing_identity, import_id, is_golden, replay_sample
    from ml.network import load_model, seed_classes, seed_weights_path
    from ml.predict import Predictor
    from services.datasets import expand_sources, source_drawings

    drawings = [
        d
        for source in expand_sources([str(SAMPLE_DATA), str(SAMPLE_BITMAPS)])
        for d in source_drawings(source)
    ]
    every = Examples(
        [import_id(d.external_id) for d in drawings],
        np.frombuffer(b"".join(d.bitmap for d in drawings), np.uint8).reshape(-1, 28, 28),
        [d.word for d in drawings],
        ["import"] * len(drawings),
    )
    golden = [is_golden(drawing_identity(d.bitmap), d.word, golden_fraction) for d in drawings]
    rest = every.take([i for i, g in enumerate(golden) if not g])
    replay = replay_sample(rest, replay_per_word, train_seed)
    trained = set(replay.ids)
    test_idx = [i for i, g in enumerate(golden) if g or every.ids[i] not in trained]
    test = every.take(test_idx)
    classes = seed_classes()
    seed = load_model(seed_weights_path().read_bytes(), len(classes))
    hits = Counter(
        w
        for p, w in zip(Predictor(seed, classes).predict(test.bitmaps), test.labels, strict=True)
        if p.label == w
    )
    n = Counter(test.labels)
    return DefaultInstall(
        golden=Counter(w for w, g in zip(every.labels, golden, strict=True) if g),
        untrained=Counter(w for w in test.labels)
        - Counter(w for w, g in zip(every.labels, golden, strict=True) if g),
        production_top1={w: hits[w] / n[w] for w in sorted(n)},
        test_bitmaps=test.bitmaps,
        test_labels=test.labels,
        training=replay,
    )


def measure_disagreement(install: DefaultInstall, settings: object) -> dict[str, float]:
    """Fine-tune the seed as a cycle does on the default install's replay sample plus the
    20 player drawings of each of 5 new words (set 2 of scripts/learning_bench.py); the
    share of the old words' test drawings the two versions disagree on, and both top-1s."""
    import sys
    import uuid

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from benchkit.inputs import shared_data_dir
    from benchkit.learning_data import new_word_sets, simplified_bitmaps, unknown_words

    from core.settings import Settings
    from flows.finetune import select_training_set
    from ml.network import load_model, seed_classes, seed_weights_path
    from ml.predict import Predictor
    from ml.train import fine_tune, train_config

    assert isinstance(settings, Settings)
    quickdraw = shared_data_dir() / "quickdraw"
    classes = seed_classes()
    seed = load_model(seed_weights_path().read_bytes(), len(classes))
    words = new_word_sets(unknown_words(quickdraw, classes), 4, 5, 2024)[1]
    new_parts = []
    for word in words:
        bitmaps = simplified_bitmaps(quickdraw, word)[:20]
        ids = [uuid.uuid5(uuid.NAMESPACE_URL, f"power:{word}:{i}") for i in range(len(bitmaps))]
        new_parts.append(Examples(ids, bitmaps, [word] * len(bitmaps), ["prompt"] * len(bitmaps)))
    train_set, new_words = select_training_set(
        Examples.concat([install.training, *new_parts]),
        classes,
        settings.new_word_min_examples,
        settings.replay_per_word,
        settings.train_seed,
    )
    result = fine_tune(seed, classes, train_set.bitmaps, train_set.labels, train_config(settings))
    labels = install.test_labels
    before = [
        p.label == w
        for p, w in zip(Predictor(seed, classes).predict(install.test_bitmaps), labels, strict=True)
    ]
    after = [
        p.label == w
        for p, w in zip(
            Predictor(result.model, result.classes).predict(install.test_bitmaps),
            labels,
            strict=True,
        )
    ]
    b = sum(1 for x, y in zip(after, before, strict=True) if y and not x)
    c = sum(1 for x, y in zip(after, before, strict=True) if x and not y)
    n = len(labels)
    return {
        "n": n,
        "new_words": len(new_words),
        "b": b,
        "c": c,
        "disagreement": (b + c) / n,
        # Without its fall: as many drawings lost as gained, the gained ones twice.
        "churn": 2 * c / n,
        "production_top1": sum(before) / n,
        "candidate_top1": sum(after) / n,
    }


DEFAULT_FALLS = (0.0, 0.01, 0.02, 0.03)


def default_install_report(args: argparse.Namespace) -> None:
    from core.settings import Settings

    settings = Settings.from_env()
    install = default_install(
        settings.replay_per_word, settings.golden_fraction, settings.train_seed
    )
    sizes = install.sizes
    total = sum(sizes.values())
    golden_only = {w: install.golden[w] for w in sizes}
    print(
        f"default install, old words' test set: {total} drawings "
        f"({sum(install.golden.values())} golden + {sum(install.untrained.values())} never "
        f"trained on); per word: " + ", ".join(f"{w} {n}" for w, n in sorted(sizes.items()))
    )
    seed_top1 = sum(install.production_top1[w] * n for w, n in sizes.items()) / total
    print(f"the seed's top-1 on them: {seed_top1:.1%}")
    rates: Sequence[float] = (0.03, 0.05, 0.08)
    if args.measure:
        measured = measure_disagreement(install, settings)
        print(
            f"measured (seed -> fine-tuned with {measured['new_words']} new words, on "
            f"{measured['n']} drawings): top-1 {measured['production_top1']:.1%} -> "
            f"{measured['candidate_top1']:.1%}, b={measured['b']} c={measured['c']}, "
            f"disagreeing on {measured['disagreement']:.1%}; churn beside the fall "
            f"(2c/n) {measured['churn']:.1%}"
        )
        rates = (measured["churn"], *rates)
    if args.rates:
        rates = tuple(float(r) for r in args.rates.split(","))
    rng = random.Random(args.seed)
    settings_grid = [
        ("golden split only, tolerance 1 pt", golden_only, GatePolicy(require_gain=False)),
        ("default install, tolerance 1 pt", sizes, GatePolicy(require_gain=False)),
        (
            "default install, tolerance 1 pt, alpha 0.1",
            sizes,
            GatePolicy(alpha=0.1, require_gain=False),
        ),
        (
            "default install, tolerance 0.75 pt",
            sizes,
            GatePolicy(max_overall_drop=0.0075, require_gain=False),
        ),
        (
            "default install, tolerance 0.5 pt",
            sizes,
            GatePolicy(max_overall_drop=0.005, require_gain=False),
        ),
    ]
    print(
        "blocked share at true falls of "
        + " / ".join(f"{100 * f:g}" for f in DEFAULT_FALLS)
        + " points"
    )
    for rate in rates:
        for name, word_sizes, policy in settings_grid:
            shares = [
                simulate_fall(
                    rng, word_sizes, install.production_top1, fall, rate, policy, args.runs
                )
                for fall in DEFAULT_FALLS
            ]
            print(
                f"disagreeing on {rate:.1%}, {name} ({sum(word_sizes.values())} drawings): "
                + " ".join(f"{s:.2f}" for s in shares)
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--default-install", action="store_true")
    parser.add_argument("--measure", action="store_true")
    parser.add_argument("--rates", help="churn rates to simulate, e.g. 0.013,0.03 (fractions)")
    args = parser.parse_args()
    if args.default_install:
        default_install_report(args)
        return
    rng = random.Random(args.seed)
    print("blocked share at true falls of " + " / ".join(f"{f:g}" for f in FALLS) + " points")
    for flip in (0.01, 0.03, 0.06):
        cells = [
            " ".join(f"{blocked_share(rng, f, flip, t, args.runs):.2f}" for f in FALLS)
            for t in TOLERANCES
        ]
        parts = [f"tolerance {100 * t:g} pt: {c}" for t, c in zip(TOLERANCES, cells, strict=True)]
        print(f"disagreeing on {2 * PRODUCTION_TOP1 * flip:.1%}: " + " | ".join(parts))


if __name__ == "__main__":
    main()
