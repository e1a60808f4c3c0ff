"""The promotion gate: a candidate model replaces production only if it is no worse.

Both reports are `ml.evaluate.score()` results on the same golden set. The candidate is promoted
only if its overall top-1 falls by no more than `max_overall_drop` (default 0: not at all) and no
word present in both per-word tables drops by more than `max_word_drop` (fractions: 0.02 = 2
points). Words only the candidate is
scored on (new words) are reported but never block. The comparison is exact on the reports'
rounded figures, with a tolerance of 1e-9 for float noise.

Note that on a golden set holding drawings of new words, production scores 0 on them, which lifts
the candidate's overall figure. Pass `known_words` (production's classes) to compare the overall
top-1 on those words only (recomputed from the per-word tables) and to treat every other word as
new: reported, never gated. That is stricter and never lets new words pay for old ones.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

_EPS = 1e-9


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reasons: list[str] = field(default_factory=list)
    # Per word present in both reports: production top-1 minus candidate top-1 (positive = worse).
    word_drops: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"promote": self.promote, "reasons": self.reasons, "word_drops": self.word_drops}


def _pct(fraction: float) -> str:
    return f"{100 * fraction:.1f}%"


def _points(fraction: float) -> str:
    return f"{100 * fraction:.1f}"


def _per_word(report: dict[str, Any]) -> dict[str, float]:
    return {str(w): float(v["top1"]) for w, v in report.get("per_word", {}).items()}


def _overall_on(report: dict[str, Any], words: Collection[str]) -> float:
    """Top-1 over the drawings of `words` only, from the per-word table."""
    table = report.get("per_word", {})
    n = sum(int(table[w]["n"]) for w in words if w in table)
    hits = sum(round(float(table[w]["top1"]) * int(table[w]["n"])) for w in words if w in table)
    return round(hits / n, 4) if n else 0.0


def decide(
    candidate: dict[str, Any],
    production: dict[str, Any],
    *,
    max_word_drop: float,
    max_overall_drop: float = 0.0,
    known_words: Collection[str] | None = None,
) -> GateDecision:
    """Promote or not, with reasons in plain words; see the module's doc."""
    if max_word_drop < 0 or max_overall_drop < 0:
        raise ValueError(
            f"the allowed drops must be >= 0, got {max_word_drop} (word), "
            f"{max_overall_drop} (overall)"
        )
    blocking: list[str] = []
    notes: list[str] = []
    if not candidate.get("n"):
        blocking.append("the candidate was scored on no drawings")
    cand_top1, prod_top1 = float(candidate.get("top1", 0.0)), float(production.get("top1", 0.0))
    scope = "overall top-1"
    if known_words is not None:
        cand_top1 = _overall_on(candidate, known_words)
        prod_top1 = _overall_on(production, known_words)
        scope = "top-1 on the words production knows"
    if cand_top1 < prod_top1 - max_overall_drop - _EPS:
        allowed = (
            f"more than the {_points(max_overall_drop)} allowed"
            if max_overall_drop
            else "it must not fall at all"
        )
        blocking.append(
            f"{scope} fell {_points(prod_top1 - cand_top1)} points "
            f"({_pct(prod_top1)} -> {_pct(cand_top1)}); {allowed}"
        )
    cand_words, prod_words = _per_word(candidate), _per_word(production)
    if known_words is not None:
        prod_words = {w: v for w, v in prod_words.items() if w in known_words}
    drops: dict[str, float] = {}
    for word in sorted(set(cand_words) & set(prod_words)):
        drop = round(prod_words[word] - cand_words[word], 6)
        drops[word] = drop
        if drop > max_word_drop + _EPS:
            blocking.append(
                f"word {word!r} dropped {_points(drop)} points "
                f"({_pct(prod_words[word])} -> {_pct(cand_words[word])}), "
                f"more than the {_points(max_word_drop)} allowed"
            )
    for word in sorted(set(cand_words) - set(prod_words)):
        notes.append(f"new word {word!r}: {_pct(cand_words[word])} top-1 (not gated)")
    for word in sorted(set(prod_words) - set(cand_words)):
        notes.append(f"word {word!r} is in production's report only (not gated)")
    if blocking:
        return GateDecision(promote=False, reasons=blocking + notes, word_drops=drops)
    summary = (
        f"{scope} {_pct(prod_top1)} -> {_pct(cand_top1)} and no shared word dropped "
        f"more than the {_points(max_word_drop)} points allowed"
    )
    return GateDecision(promote=True, reasons=[summary, *notes], word_drops=drops)
