"""The relabelling policy: when a prompt word becomes a training label."""

from __future__ import annotations

from core.settings import Settings
from flows.relabel import Decision, decide
from ml.predict import Prediction

SETTINGS = Settings(relabel_accept_confidence=0.5, relabel_reject_confidence=0.8)
KNOWN = {"apple", "cup", "star"}


def guess(label: str, confidence: float) -> Prediction:
    return Prediction(label=label, confidence=confidence, top=[(label, confidence)])


def test_confident_agreement_accepts_the_prompt():
    assert decide("apple", guess("apple", 0.9), KNOWN, None, SETTINGS) == Decision(label="apple")


def test_confident_disagreement_goes_to_review():
    decision = decide("apple", guess("cup", 0.93), KNOWN, None, SETTINGS)
    assert decision.label is None and decision.review is not None
    assert "cup" in decision.review and "93%" in decision.review


def test_unsure_model_decides_nothing():
    assert decide("apple", guess("apple", 0.3), KNOWN, None, SETTINGS) == Decision()
    assert decide("apple", guess("cup", 0.6), KNOWN, None, SETTINGS) == Decision()


def test_scribbles_and_near_empty_doodles_go_to_review_whatever_the_model_says():
    assert decide("apple", guess("apple", 0.99), KNOWN, "scribble", SETTINGS).review == "scribble"
    assert decide("fish", guess("cup", 0.1), KNOWN, "near_empty", SETTINGS).review == "near_empty"


def test_a_new_word_is_accepted_unless_the_model_confidently_sees_a_known_one():
    assert decide("fish", guess("cup", 0.4), KNOWN, None, SETTINGS) == Decision(label="fish")
    assert decide("fish", guess("cup", 0.85), KNOWN, None, SETTINGS).review is not None


def test_no_prompt_no_label():
    assert decide(None, guess("apple", 0.99), KNOWN, None, SETTINGS) == Decision()


def test_thresholds_are_settings():
    strict = Settings(relabel_accept_confidence=0.95, relabel_reject_confidence=0.8)
    assert decide("apple", guess("apple", 0.9), KNOWN, None, strict) == Decision()
