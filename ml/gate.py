"""The promotion gate: a candidate replaces production only when the evidence says so.

Both models are scored on the SAME test drawings (the golden set, plus the provisional
test sets of words no reviewer has confirmed yet), so the gate compares them drawing by
drawing. Only the drawings where they disagree carry evidence: `b` production gets right
and the candidate wrong, `c` the reverse (`ml.paired`). The rule, in plain words:

1. Old words overall. On the drawings of the words production knows, the candidate is
   blocked when the evidence says its top-1 fell by more than `max_overall_drop`: a
   one-sided exact binomial test on b among the b + c disagreements gives p < `alpha`.
   With a tolerance of 0 this is the exact McNemar test ("significantly worse").
2. Each old word. The same test on that word's drawings with `max_word_drop`: a word
   blocks only when its drop is evidenced, so one drawing among five cannot block (a
   word of 5 drawings blocks only when the candidate loses all five).
3. New words (the candidate knows them, production does not) must reach
   `new_word_min_top1` top-1 on their test drawings taken together, and a single new
   word blocks when the evidence says it is below that bar (one-sided exact binomial
   test on its hits, p < `alpha`); a new word without any test drawing blocks. Judged
   alone, a word of 5 test drawings at a true 70% would miss a 60% bar one time in six,
   and one of four such words nearly one time in two.
4. No churn. A candidate that adds no word is promoted only when it is significantly
   better on the old words (one-sided exact McNemar, p < `alpha`), never on a tie.
   `require_gain=False` turns this off (an erasure must replace production anyway).

Why: the golden sets hold 5 to 8 drawings of most words, where one drawing moves a word
12 to 20 points, so comparing rounded top-1 figures blocked good candidates on noise; a
paired test on the same drawings uses every disagreement and nothing else. Each word is
tested at `alpha` on its own (no multiple-testing correction): a collapsed word of
8 drawings must still block, and the exact test is conservative on small words.
Words in the test set that neither model knows are reported and never gated.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from ml.paired import Pairs, binomial_cdf, wilson_interval


@dataclass(frozen=True)
class GatePolicy:
    alpha: float = 0.05
    max_overall_drop: float = 0.01
    max_word_drop: float = 0.02
    new_word_min_top1: float = 0.6
    require_gain: bool = True

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {self.alpha}")
        if self.max_overall_drop < 0 or self.max_word_drop < 0:
            raise ValueError(
                f"the tolerated drops must be >= 0, got {self.max_overall_drop} (overall), "
                f"{self.max_word_drop} (word)"
            )
        if not 0.0 <= self.new_word_min_top1 <= 1.0:
            raise ValueError(f"new_word_min_top1 must be in [0, 1], got {self.new_word_min_top1}")

    def rule(self) -> str:
        """The rule in plain words, with this policy's numbers."""
        gain = (
            f"A candidate that adds no word must be significantly better on the old words "
            f"(exact McNemar, p < {self.alpha:g}); a tie is not promoted."
            if self.require_gain
            else "A candidate that adds no word may be promoted on a tie."
        )
        return (
            f"Blocked when the paired evidence on the same drawings says the old words' top-1 "
            f"fell by more than {_points(self.max_overall_drop)} points overall, or one old "
            f"word's by more than {_points(self.max_word_drop)} points (one-sided exact "
            f"binomial test on the drawings the two models disagree on, p < {self.alpha:g}); "
            f"the new words need at least {percent(self.new_word_min_top1)} top-1 on their test "
            f"drawings together, and one new word blocks when the same kind of test says it is "
            f"below that. {gain}"
        )


@dataclass(frozen=True)
class PairedScores:
    """Per drawing: its word and whether each model's top guess was right."""

    words: Sequence[str]
    candidate_hits: Sequence[bool]
    production_hits: Sequence[bool]

    def __post_init__(self) -> None:
        n = len(self.words)
        if len(self.candidate_hits) != n or len(self.production_hits) != n:
            raise ValueError(
                f"{n} words, {len(self.candidate_hits)} candidate and "
                f"{len(self.production_hits)} production hits: mismatch"
            )

    def pairs(self, keep: Collection[str]) -> Pairs:
        """The disagreement counts on the drawings of the words in `keep`."""
        idx = [i for i, w in enumerate(self.words) if w in keep]
        return Pairs.count(
            [bool(self.candidate_hits[i]) for i in idx],
            [bool(self.production_hits[i]) for i in idx],
        )


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reasons: list[str] = field(default_factory=list)
    rule: str = ""
    # The old words together: n, top-1 of both, b, c, p_worse (drop above the tolerance),
    # p_better (McNemar).
    overall: dict[str, Any] = field(default_factory=dict)
    # Per word: kind (old, new, unknown), n, both top-1 with Wilson 95% intervals, b, c,
    # p_drop (old words: fell beyond the tolerance?), p_below (new words: below the bar?),
    # blocking.
    words: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Per old word: production top-1 minus candidate top-1 (positive = worse).
    word_drops: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "promote": self.promote,
            "reasons": self.reasons,
            "rule": self.rule,
            "overall": self.overall,
            "words": self.words,
            "word_drops": self.word_drops,
        }


def percent(fraction: float) -> str:
    """A fraction as a percentage with one decimal, as the gate's reasons and the report
    write it."""
    return f"{100 * fraction:.1f}%"


def _points(fraction: float) -> str:
    return f"{100 * fraction:.1f}"


def _p(value: float) -> str:
    return f"{value:.2g}" if value >= 0.001 else "<0.001"


def _top1(hits: int, n: int) -> dict[str, Any]:
    low, high = wilson_interval(hits, n)
    return {"top1": round(hits / n, 4) if n else 0.0, "ci95": [round(low, 4), round(high, 4)]}


def _below(entry: dict[str, Any], policy: GatePolicy) -> bool:
    return bool(entry["n"]) and entry["candidate"]["top1"] < policy.new_word_min_top1


def _word_entry(kind: str, pairs: Pairs) -> dict[str, Any]:
    return {
        "kind": kind,
        "n": pairs.n,
        "candidate": _top1(pairs.candidate_hits, pairs.n),
        "production": _top1(pairs.production_hits, pairs.n),
        "b": pairs.b,
        "c": pairs.c,
        "blocking": False,
    }


def decide(
    scores: PairedScores,
    *,
    known_words: Collection[str],
    candidate_words: Collection[str],
    policy: GatePolicy,
) -> GateDecision:
    """Promote or not, with reasons in plain words; see the module's doc.

    `known_words` are production's classes, `candidate_words` the candidate's."""
    known = set(known_words)
    new = set(candidate_words) - known
    blocking: list[str] = []
    notes: list[str] = []
    words: dict[str, dict[str, Any]] = {}
    drops: dict[str, float] = {}

    old = scores.pairs(known)
    p_worse = old.p_drop_above(policy.max_overall_drop)
    p_better = old.p_better()
    overall: dict[str, Any] = {
        "n": old.n,
        "candidate": _top1(old.candidate_hits, old.n),
        "production": _top1(old.production_hits, old.n),
        "b": old.b,
        "c": old.c,
        "p_worse": round(p_worse, 6),
        "p_better": round(p_better, 6),
    }
    summary = (
        f"old words: top-1 {percent(overall['production']['top1'])} -> "
        f"{percent(overall['candidate']['top1'])} on {old.n} drawings ({old.b} now wrong, "
        f"{old.c} now right)"
    )
    if p_worse < policy.alpha:
        blocking.append(
            f"{summary}: a fall of more than {_points(policy.max_overall_drop)} points is "
            f"evidenced (p={_p(p_worse)} < {policy.alpha:g})"
        )

    for word in sorted(set(scores.words)):
        pairs = scores.pairs({word})
        if word in known:
            entry = _word_entry("old", pairs)
            p_drop = pairs.p_drop_above(policy.max_word_drop)
            entry["p_drop"] = round(p_drop, 6)
            drops[word] = round(pairs.drop, 6)
            if p_drop < policy.alpha:
                entry["blocking"] = True
                blocking.append(
                    f"word {word!r} fell from {percent(entry['production']['top1'])} to "
                    f"{percent(entry['candidate']['top1'])} on {pairs.n} drawings ({pairs.b} now "
                    f"wrong, {pairs.c} now right): a fall of more than "
                    f"{_points(policy.max_word_drop)} points is evidenced "
                    f"(p={_p(p_drop)} < {policy.alpha:g})"
                )
        elif word in new:
            entry = _word_entry("new", pairs)
            top1 = entry["candidate"]["top1"]
            p_below = binomial_cdf(pairs.candidate_hits, pairs.n, policy.new_word_min_top1)
            entry["p_below"] = round(p_below, 6)
            if p_below < policy.alpha:
                entry["blocking"] = True
                blocking.append(
                    f"new word {word!r}: {percent(top1)} top-1 on {pairs.n} test drawings is "
                    f"evidence it is below the {percent(policy.new_word_min_top1)} required "
                    f"(p={_p(p_below)} < {policy.alpha:g})"
                )
            else:
                notes.append(f"new word {word!r}: {percent(top1)} top-1 on {pairs.n} test drawings")
        else:
            entry = _word_entry("unknown", pairs)
            notes.append(f"word {word!r}: neither model knows it ({pairs.n} drawings, not gated)")
        words[word] = entry
    for word in sorted(new - set(scores.words)):
        words[word] = {"kind": "new", "n": 0, "blocking": True}
        blocking.append(f"new word {word!r} has no test drawings: nothing shows it was learned")
    fresh = scores.pairs(new)
    together = fresh.candidate_hits / fresh.n if fresh.n else 0.0
    if fresh.n and together < policy.new_word_min_top1:
        laggards = sorted(w for w in new & set(words) if _below(words[w], policy))
        for word in laggards:
            words[word]["blocking"] = True
        blocking.append(
            f"new words together: {percent(together)} top-1 on {fresh.n} test drawings, below "
            f"the {percent(policy.new_word_min_top1)} required (below it alone: "
            f"{', '.join(repr(w) for w in laggards) or 'none'})"
        )

    if not new and policy.require_gain and p_better >= policy.alpha:
        blocking.append(
            f"{summary}: no new word, and not significantly better "
            f"(p={_p(p_better)} >= {policy.alpha:g}); a tie is not worth a new version"
        )
    if not new and not old.n:
        blocking.append("no test drawings of the words production knows: nothing to compare")

    rule = policy.rule()
    if blocking:
        return GateDecision(False, blocking + notes, rule, overall, words, drops)
    verdict = f"{summary}; no fall beyond the tolerances is evidenced"
    if not new:
        verdict += f", and the candidate is significantly better (p={_p(p_better)})"
    return GateDecision(True, [verdict, *notes], rule, overall, words, drops)
