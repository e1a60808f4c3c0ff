"""The promotion gate on constructed paired outcomes (candidate and production on the same
drawings)."""

from __future__ import annotations

import pytest

from ml.gate import GatePolicy, PairedScores, decide

POLICY = GatePolicy()  # the shipped defaults: alpha 0.05, 1 and 2 points, 60%


def _word(word: str, *, both: int = 0, b: int = 0, c: int = 0, neither: int = 0) -> PairedScores:
    """`both` drawings both models get right, `b` only production, `c` only the candidate."""
    outcomes = [(True, True)] * both + [(False, True)] * b + [(True, False)] * c
    outcomes += [(False, False)] * neither
    return PairedScores([word] * len(outcomes), [x for x, _ in outcomes], [y for _, y in outcomes])


def _join(*parts: PairedScores) -> PairedScores:
    return PairedScores(
        [w for p in parts for w in p.words],
        [h for p in parts for h in p.candidate_hits],
        [h for p in parts for h in p.production_hits],
    )


def _decide(scores: PairedScores, new: tuple[str, ...] = (), **policy: object):
    known = sorted({w for w in scores.words if w not in new})
    return decide(
        scores,
        known_words=known,
        candidate_words=[*known, *new],
        policy=GatePolicy(**{**POLICY.__dict__, **policy}),  # type: ignore[arg-type]
    )


def test_a_true_five_point_drop_on_500_drawings_blocks() -> None:
    # 450 -> 425 right: 30 drawings now wrong, 5 now right.
    scores = _word("cup", both=420, b=30, c=5, neither=45)
    assert len(scores.words) == 500
    decision = _decide(_join(scores, _word("fish", both=10)), new=("fish",), max_word_drop=1.0)
    assert not decision.promote
    assert decision.overall["b"] == 30 and decision.overall["c"] == 5
    assert decision.overall["p_worse"] < 0.05
    assert any("old words" in r and "evidenced" in r for r in decision.reasons)


def test_a_true_five_point_drop_spread_over_words_blocks_overall() -> None:
    # 20 words of 25 drawings, each loses a drawing or two: 5 points overall, no word alone
    # shows a fall beyond 2 points.
    parts = [
        _word(f"w{i:02}", both=21, b=2 if i < 5 else 1, neither=2 if i < 5 else 3)
        for i in range(20)
    ]
    decision = _decide(_join(*parts, _word("fish", both=10)), new=("fish",))
    assert not decision.promote
    assert not any(e["blocking"] for e in decision.words.values())
    assert decision.overall["p_worse"] < 0.05
    assert len(decision.reasons) == 2  # the old words' fall, then the new word's note


def test_one_changed_drawing_among_five_does_not_block() -> None:
    # "hat" falls from 100% to 80% on its 5 drawings: 20 points, but one drawing.
    scores = _join(
        _word("hat", both=4, b=1),
        _word("cup", both=30, c=1),
        _word("fish", both=8, neither=2),  # new: the candidate's 8/10
    )
    decision = _decide(scores, new=("fish",))
    assert decision.promote, decision.reasons
    assert decision.words["hat"]["blocking"] is False
    assert decision.word_drops["hat"] == pytest.approx(0.2)
    assert decision.words["hat"]["p_drop"] > 0.05


def test_a_word_that_collapses_blocks_even_on_eight_drawings() -> None:
    scores = _join(_word("hat", b=8), _word("cup", both=200, c=8), _word("fish", both=10))
    decision = _decide(scores, new=("fish",))
    assert not decision.promote
    assert decision.words["hat"]["blocking"] is True
    assert [r for r in decision.reasons if r.startswith("word 'hat'")]


def test_a_candidate_worse_on_every_word_blocks() -> None:
    # Each of 20 words of 6 drawings loses one: no word alone is evidence, all together are.
    scores = _join(*[_word(f"w{i:02}", both=5, b=1) for i in range(20)], _word("fish", both=9))
    decision = _decide(scores, new=("fish",))
    assert not decision.promote
    assert not any(decision.words[f"w{i:02}"]["blocking"] for i in range(20))
    assert decision.overall["p_worse"] < 0.001


def test_a_tie_without_new_words_is_not_promoted() -> None:
    scores = _join(_word("cup", both=90, b=3, c=3, neither=4), _word("hat", both=50))
    decision = _decide(scores)
    assert not decision.promote
    assert any("not significantly better" in r for r in decision.reasons)
    # Identical predictions (no disagreement at all) are a tie as well.
    assert not _decide(_word("cup", both=50, neither=5)).promote


def test_a_clearly_better_candidate_without_new_words_is_promoted() -> None:
    scores = _join(_word("cup", both=80, b=1, c=12, neither=7), _word("hat", both=50, c=3))
    decision = _decide(scores)
    assert decision.promote, decision.reasons
    assert decision.overall["p_better"] < 0.05
    assert "significantly better" in decision.reasons[0]


def test_a_tie_is_promoted_when_gain_is_not_required() -> None:
    scores = _word("cup", both=90, b=3, c=3, neither=4)
    assert _decide(scores, require_gain=False).promote


def test_new_words_below_their_bar_together_block_and_above_pass() -> None:
    old = _word("cup", both=100, b=1, c=1)
    weak = _decide(_join(old, _word("fish", both=5, neither=5)), new=("fish",))
    assert not weak.promote
    assert weak.words["fish"]["kind"] == "new" and weak.words["fish"]["blocking"]
    assert any(r.startswith("new words together: 50.0% top-1 on 10") for r in weak.reasons)
    strong = _decide(_join(old, _word("fish", both=6, neither=4)), new=("fish",))
    assert strong.promote, strong.reasons
    assert strong.words["fish"]["candidate"]["top1"] == 0.6


def test_one_unlucky_new_word_of_five_drawings_does_not_block() -> None:
    # 1/5 is no evidence against a 60% word (p = 0.087); the four words reach 80% together.
    new = ("fish", "kite", "drum")
    scores = _join(
        _word("cup", both=100, b=1, c=1),
        _word("fish", both=1, neither=4),
        _word("kite", both=5),
        _word("drum", both=10),
    )
    decision = _decide(scores, new=new)
    assert decision.promote, decision.reasons
    assert decision.words["fish"]["p_below"] == pytest.approx(0.087, abs=0.001)
    assert decision.words["fish"]["blocking"] is False


def test_a_new_word_evidently_below_its_bar_blocks_even_when_the_others_carry_it() -> None:
    scores = _join(
        _word("cup", both=100, b=1, c=1), _word("fish", neither=5), _word("kite", both=30)
    )
    decision = _decide(scores, new=("fish", "kite"))
    assert not decision.promote
    assert decision.words["fish"]["blocking"] and not decision.words["kite"]["blocking"]
    assert any(r.startswith("new word 'fish': 0.0% top-1 on 5") for r in decision.reasons)


def test_a_new_word_without_test_drawings_blocks() -> None:
    decision = _decide(_word("cup", both=100, c=10), new=("fish",))
    assert not decision.promote
    assert any("'fish' has no test drawings" in r for r in decision.reasons)


def test_words_neither_model_knows_are_reported_not_gated() -> None:
    scores = _join(_word("cup", both=100, c=10), _word("kite", neither=6))
    decision = decide(scores, known_words=["cup"], candidate_words=["cup"], policy=POLICY)
    assert decision.promote, decision.reasons
    assert decision.words["kite"]["kind"] == "unknown"
    assert "kite" not in decision.word_drops


def test_the_decision_carries_the_rule_and_intervals() -> None:
    decision = _decide(
        _join(_word("cup", both=40, c=10), _word("fish", both=9, neither=1)), new=("fish",)
    )
    as_dict = decision.as_dict()
    assert as_dict["promote"] is True
    assert "p < 0.05" in as_dict["rule"] and "60.0%" in as_dict["rule"]
    low, high = as_dict["words"]["cup"]["candidate"]["ci95"]
    assert low < 1.0 and high == 1.0
    assert as_dict["overall"]["n"] == 50


@pytest.mark.parametrize(
    "bad",
    [{"alpha": 0.0}, {"alpha": 1.5}, {"max_word_drop": -0.1}, {"new_word_min_top1": 2.0}],
)
def test_bad_policies_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        GatePolicy(**bad)


def test_mismatched_scores_are_refused() -> None:
    with pytest.raises(ValueError, match="mismatch"):
        PairedScores(["cup"], [True, False], [True])


# The old words' test set of a default install's first cycle (scripts/gate_power.py
# --default-install): the shipped sample's golden drawings and those the cycle's replay
# sample leaves untrained, 1,932 drawings.
DEFAULT_INSTALL = {
    "apple": 200, "book": 200, "bowtie": 225, "candle": 225, "cloud": 200, "cup": 2,
    "door": 3, "envelope": 5, "eyeglasses": 8, "guitar": 225, "hammer": 6, "hat": 8,
    "ice cream": 3, "leaf": 4, "lightning": 4, "pants": 4, "scissors": 200, "star": 200,
    "t-shirt": 10, "tree": 200,
}  # fmt: skip


def _simulated(seed: int, fall: float, churn: float = 0.013, top1: float = 0.95) -> PairedScores:
    """Production right with `top1`; the candidate loses and gains `churn` / 2 of the
    drawings each (the churn measured seed -> fine-tuned) and loses `fall` more."""
    import random

    rng = random.Random(seed)
    lose, gain = (churn / 2 + fall) / top1, churn / 2 / (1 - top1)
    words, cand, prod = [], [], []
    for word, n in DEFAULT_INSTALL.items():
        for _ in range(n):
            right = rng.random() < top1
            prod.append(right)
            cand.append(rng.random() >= lose if right else rng.random() < gain)
            words.append(word)
    return PairedScores(words, cand, prod)


def test_a_two_point_fall_on_a_default_installs_test_set_blocks():
    scores = _simulated(seed=3, fall=0.02)
    old = scores.pairs(set(DEFAULT_INSTALL))
    assert old.n == 1932 and 0.017 < old.drop < 0.023, old
    decision = _decide(scores, require_gain=False)
    assert not decision.promote
    assert "on 1932 drawings" in decision.reasons[0]  # the reasons state n


def test_a_candidate_that_keeps_the_old_words_passes_on_a_default_installs_test_set():
    decision = _decide(_simulated(seed=3, fall=0.0), require_gain=False)
    assert decision.promote, decision.reasons
    assert "on 1932 drawings" in decision.reasons[0]
