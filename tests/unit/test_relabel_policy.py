"""The relabelling policy: when a prompt word becomes a training label."""

from __future__ import annotations

from core.settings import Settings
from flows.relabel import Decision, Evidence, decide
from ml.agreement import Agreement
from ml.predict import Prediction

SETTINGS = Settings(
    relabel_accept_confidence=0.5, relabel_reject_confidence=0.8, relabel_doubt_probability=0.2
)
KNOWN = {"apple", "cup", "star"}
AGREES = Agreement(cosine=0.6, floor=0.3, group=25)
OUTLIER = Agreement(cosine=0.1, floor=0.3, group=25)


def guess(label: str, confidence: float) -> Prediction:
    return Prediction(label=label, confidence=confidence, top=[(label, confidence)])


def known(p_prompt: float, quality: str | None = None) -> Evidence:
    return Evidence(quality=quality, prompt_probability=p_prompt)


def test_confident_agreement_accepts_a_known_prompt():
    decision = decide("apple", guess("apple", 0.9), KNOWN, known(0.9), SETTINGS)
    assert decision == Decision(label="apple")


def test_a_known_prompt_the_model_hardly_sees_goes_to_review():
    decision = decide("apple", guess("cup", 0.93), KNOWN, known(0.03), SETTINGS)
    assert decision.label is None and decision.review is not None
    assert "cup" in decision.review and "93%" in decision.review and "3%" in decision.review
    # Not confident in anything, and not in the prompt either: a scribble, most likely.
    assert decide("apple", guess("cup", 0.3), KNOWN, known(0.1), SETTINGS).review is not None


def test_unsure_model_decides_nothing_about_a_known_prompt():
    assert decide("apple", guess("apple", 0.3), KNOWN, known(0.3), SETTINGS) == Decision()
    assert decide("apple", guess("cup", 0.6), KNOWN, known(0.35), SETTINGS) == Decision()


def test_scribbles_and_near_empty_doodles_go_to_review_whatever_the_model_says():
    evidence = known(0.99, quality="scribble")
    assert decide("apple", guess("apple", 0.99), KNOWN, evidence, SETTINGS).review == "scribble"
    empty = Evidence(quality="near_empty", agreement=AGREES)
    assert decide("fish", guess("cup", 0.1), KNOWN, empty, SETTINGS).review == "near_empty"


def test_a_new_word_agreeing_with_its_other_drawings_is_accepted_whatever_the_model_sees():
    # The model cannot know "fish": its confident "cup" is no evidence against the prompt.
    evidence = Evidence(agreement=AGREES)
    assert decide("fish", guess("cup", 0.97), KNOWN, evidence, SETTINGS) == Decision(label="fish")


def test_a_new_word_drawing_unlike_its_other_drawings_goes_to_review():
    decision = decide("fish", guess("cup", 0.4), KNOWN, Evidence(agreement=OUTLIER), SETTINGS)
    assert decision.label is None and decision.review is not None
    assert (
        decision.review.startswith("unlike_prompt") and "24 drawings of 'fish'" in decision.review
    )


def test_a_new_word_drawing_more_like_a_known_word_goes_to_review():
    evidence = Evidence(agreement=AGREES, looks_known="cup")
    decision = decide("fish", guess("cup", 0.95), KNOWN, evidence, SETTINGS)
    assert decision.review is not None and "more like 'cup'" in decision.review


def test_a_new_word_with_too_few_drawings_to_judge_waits():
    assert decide("fish", guess("cup", 0.2), KNOWN, Evidence(), SETTINGS) == Decision()


def test_no_prompt_no_label():
    assert decide(None, guess("apple", 0.99), KNOWN, known(0.99), SETTINGS) == Decision()


def test_thresholds_are_settings():
    strict = Settings(relabel_accept_confidence=0.95, relabel_reject_confidence=0.8)
    assert decide("apple", guess("apple", 0.9), KNOWN, known(0.9), strict) == Decision()
    doubting = Settings(relabel_doubt_probability=0.5)
    assert decide("apple", guess("apple", 0.45), KNOWN, known(0.45), doubting).review


def test_a_prompt_that_is_no_word_never_becomes_a_label():
    decision = decide("?", guess("cup", 0.2), KNOWN, Evidence(agreement=AGREES), SETTINGS)
    assert (
        decision.label is None and decision.review is not None and "not a word" in decision.review
    )
