"""How often the promotion gate (ml.gate) blocks a candidate whose old words truly fell by
D points, on simulated paired outcomes: 20 old words of 25 test drawings (500), production
top-1 0.94, the two versions disagreeing on 2 to 11% of the drawings.

    .venv/bin/python scripts/gate_power.py [--runs 1000]

Prints one line a churn level: the share blocked at true falls of 0, 1.6, 2 and 5 points,
for overall tolerances (DOODLE_GATE_MAX_OVERALL_DROP) of 0, 1 and 2 points.
"""

from __future__ import annotations

import argparse
import random

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
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
