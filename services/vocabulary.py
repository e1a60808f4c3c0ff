"""Labels are words: which words a reviewer may label with, proposing new ones, and an
admin's decision about them.

A reviewer's or admin's label must be a word (db.labels.normalize_word: letters of any
script with single spaces, hyphens or apostrophes between them) and a *known* one: a
class of the production model, a word of the imported dataset, or a word an admin
confirmed (db.vocabulary). Anything else is refused with suggestions (the known words
closest to it), unless the request proposes it as a new word: then the label is
recorded, the word waits for an admin (`proposed`), and its reviewer labels do not train
until an admin confirms it. Reviewers may only propose; admins confirm or reject.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from db import labels, vocabulary
from db.models import AuditLog, WordStatus
from db.vocabulary import WordInfo
from services.errors import ServiceError

SUGGESTIONS = 3
# difflib's ratio a suggestion needs ("aple" -> "apple" is 0.89, -> "candle" 0.6).
SUGGESTION_CUTOFF = 0.7
NEW_WORD_HINT = (
    'To add it, propose it as a new word ("new_word": true): the label is kept, and trains '
    "once an admin confirms the word."
)


class WordRefused(ServiceError):
    """Labels of these words are refused; `words` maps each to its suggestions."""

    reason = "unknown_word"

    def __init__(self, message: str, words: dict[str, list[str]]) -> None:
        super().__init__(message)
        self.words = words

    def details(self) -> dict[str, Any]:
        first = next(iter(self.words))
        return {
            "field": "label",
            "reason": self.reason,
            "word": first,
            "suggestions": self.words[first],
            "words": self.words,
        }


class UnknownWord(WordRefused):
    """Not a known word, and the request did not propose it as a new one."""


class RejectedWord(WordRefused):
    """An admin rejected the word: no label may use it, proposed or not."""

    reason = "rejected_word"


class WordConflict(ServiceError):
    """The decision does not fit the word (rejecting a word production or the dataset has)."""


def suggestions(word: str, known: Iterable[str]) -> list[str]:
    """The known words closest to `word`, best first (difflib's ratio)."""
    return difflib.get_close_matches(word, sorted(known), n=SUGGESTIONS, cutoff=SUGGESTION_CUTOFF)


def _did_you_mean(word: str, close: list[str]) -> str:
    if not close:
        return f"unknown word {word!r}"
    return f"unknown word {word!r}; did you mean " + " or ".join(repr(c) for c in close) + "?"


def admit(s: Session, words: Iterable[str], *, new_word: bool, actor: str) -> list[str]:
    """Check that reviewer labels may use `words` (normalised already), in the caller's
    transaction. Known words pass. A word an admin rejected never does (RejectedWord).
    Other words pass only when `new_word`: they are proposed (by `actor`; audited) and
    wait for an admin. Otherwise UnknownWord, with suggestions. Returns the words
    proposed now."""
    wanted = sorted(set(words))
    known = vocabulary.known(s, wanted)
    unknown = [w for w in wanted if w not in known]
    if not unknown:
        return []
    status = vocabulary.statuses(s, unknown)
    rejected = [w for w in unknown if status.get(w) is WordStatus.rejected]
    if rejected:
        close = vocabulary.known_words(s)
        raise RejectedWord(
            "; ".join(
                f"an admin rejected the word {w!r}" + _alternatives(suggestions(w, close))
                for w in rejected
            ),
            {w: suggestions(w, close) for w in rejected},
        )
    if not new_word:
        close = vocabulary.known_words(s)
        found = {w: suggestions(w, close) for w in unknown}
        waiting = [w for w in unknown if status.get(w) is WordStatus.proposed]
        message = "; ".join(_did_you_mean(w, found[w]) for w in unknown)
        if waiting:
            message += " (" + ", ".join(map(repr, waiting)) + " waits for an admin to confirm it)"
        end = "" if message.endswith("?") else "."
        raise UnknownWord(f"{message}{end} {NEW_WORD_HINT}", found)
    proposed = vocabulary.propose(s, unknown, actor=actor)
    for word in proposed:
        s.add(AuditLog(actor=actor, action="word.propose", subject=f"word:{word}", details={}))
    return proposed


def _alternatives(close: list[str]) -> str:
    return "; did you mean " + " or ".join(map(repr, close)) + "?" if close else ""


def list_words(
    sessions: sessionmaker[Session], *, status: WordStatus | str | None, limit: int
) -> list[WordInfo]:
    """The words proposed, confirmed or rejected (all when `status` is None), oldest first."""
    with sessions() as s:
        return vocabulary.list_words(
            s, status=None if status is None else WordStatus(status), limit=limit
        )


def decide_word(
    sessions: sessionmaker[Session], word: str, decision: str, *, actor: str
) -> tuple[WordInfo, WordStatus | None]:
    """An admin confirms (`confirm`) or rejects (`reject`) a word, proposed or not; returns
    the word and its status before. Audited (word.confirm, word.reject).

    Raises labels.InvalidLabel (not a word) or WordConflict (rejecting a word the
    production model or the imported dataset has: it stays a word whatever the table
    says)."""
    word = labels.normalize_word(word)
    status = {"confirm": WordStatus.confirmed, "reject": WordStatus.rejected}[decision]
    with sessions.begin() as s:
        if status is WordStatus.rejected and vocabulary.is_model_or_dataset_word(s, word):
            raise WordConflict(
                f"{word!r} is a word of the production model or of the imported dataset; "
                "it cannot be rejected"
            )
        before = vocabulary.decide(s, word, status, actor=actor)
        s.add(
            AuditLog(
                actor=actor,
                action=f"word.{decision}",
                subject=f"word:{word}",
                details={"previous_status": None if before is None else before.value},
            )
        )
        s.flush()
        info = vocabulary.get_word(s, word)
    assert info is not None
    return info, before


def awaiting_confirmation(sessions: sessionmaker[Session]) -> list[dict[str, Any]]:
    """For the flywheel's report: the words reviewers proposed that wait for an admin,
    oldest first, with how many doodles carry each (their reviewer labels do not train
    until the word is confirmed)."""
    with sessions() as s:
        return [
            {
                "word": w.word,
                "proposed_by": w.proposed_by,
                "proposed_at": w.proposed_at.isoformat(),
                "doodles": w.doodles,
            }
            for w in vocabulary.list_words(s, status=WordStatus.proposed)
        ]
