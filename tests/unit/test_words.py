"""What a word is (db.labels.normalize_word), without I/O."""

from __future__ import annotations

import pytest

from db.labels import MAX_LABEL_LENGTH, InvalidLabel, is_word, normalize_text, normalize_word
from services.vocabulary import suggestions

WORDS = {
    "apple": "apple",
    "  Apple ": "apple",
    "ICE   cream": "ice cream",
    "ice\u00a0cream": "ice cream",  # a no-break space
    "T-Shirt": "t-shirt",
    "t\u2011shirt": "t-shirt",  # a non-breaking hyphen
    "o\u2019clock": "o'clock",  # a typographic apostrophe
    "The Eiffel Tower": "the eiffel tower",
    "\uff21\uff30\uff30\uff2c\uff25": "apple",  # full-width letters (NFKC)
    "\ufb01sh": "fish",  # the fi ligature (NFKC)
    "cafe\u0301": "caf\u00e9",  # composed (NFC)
    "Stra\u00dfe": "stra\u00dfe",  # lower case, not case-folded: the prompts' own rule
    "\u732b": "\u732b",  # a Chinese word
    "\u092c\u093f\u0932\u094d\u0932\u0940": "\u092c\u093f\u0932\u094d\u0932\u0940",  # Hindi
    "\u043a\u043e\u0448\u043a\u0430": "\u043a\u043e\u0448\u043a\u0430",  # Russian
}
NOT_WORDS = [
    "?",
    "",
    "   ",
    "a1",
    "cat!",
    "t--shirt",
    "ice  -cream",
    "-cat",
    "cat'",
    "ca\x00t",
    "\u0301a",  # a mark before any letter
    "a" * (MAX_LABEL_LENGTH + 1),
    "\u0130" * MAX_LABEL_LENGTH,  # lower-cased, twice as long
    None,
    3,
]


@pytest.mark.parametrize(("text", "word"), WORDS.items(), ids=list(WORDS.values()))
def test_words_are_normalised(text, word):
    assert normalize_word(text) == word
    assert is_word(text)
    assert normalize_word(word) == word  # idempotent


@pytest.mark.parametrize("text", NOT_WORDS, ids=[repr(t)[:20] for t in NOT_WORDS])
def test_not_words_are_refused_with_a_reason(text):
    assert not is_word(text)
    with pytest.raises(InvalidLabel, match="word"):
        normalize_word(text)


def test_the_refusal_says_what_a_word_is():
    with pytest.raises(InvalidLabel) as info:
        normalize_word("?")
    assert "'?' is not a word" in str(info.value)
    assert "letters (any script)" in str(info.value)


def test_normalize_text_does_not_judge():
    assert normalize_text("  What?  Now ") == "what? now"


def test_suggestions_are_the_closest_known_words():
    known = ["apple", "cup", "hat", "ice cream"]
    assert suggestions("aple", known) == ["apple"]
    assert suggestions("icecream", known) == ["ice cream"]
    assert suggestions("zebra", known) == []
