"""Training labels with provenance, their precedence, and who may be trained on.

Every function takes a Session and never commits; the caller owns the transaction::

    with factory.begin() as s:
        for c in relabel_candidates(s, limit=1000):
            add_label(s, c.id, c.word, LabelSource.prompt, actor="flow:relabel")

The precedence of labels (`effective_labels`): a `reviewer` label beats everything; an
`import` label (the dataset's own word, only on imported drawings) is ground truth; the
automatic ones (`prompt`, `model`) come last, as one tier. Within a tier the latest wins.

Reviewers' decisions are `db.reviews`; here they count for precedence: once a reviewer
has resolved a doodle's review, only reviewer labels count for that doodle.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, exists, func, or_, select
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.orm import Session, aliased

from db.models import (
    Consent,
    Label,
    LabelSource,
    Player,
    Recognition,
    RecognitionOrigin,
    RecognitionStatus,
    Review,
    ReviewStatus,
    Word,
    WordStatus,
)

AUTOMATIC = (LabelSource.prompt, LabelSource.model)

# Higher wins; prompt and model share a tier (the latest automatic decision stands).
SOURCE_RANK = {
    LabelSource.reviewer: 3,
    LabelSource.import_: 2,
    LabelSource.model: 1,
    LabelSource.prompt: 1,
}


@dataclass(frozen=True)
class Candidate:
    """A collected doodle the relabel flow has not decided about yet."""

    id: uuid.UUID
    word: str  # the prompt the player was shown
    bitmap: bytes  # 28x28 uint8, row-major (np.frombuffer(b, np.uint8).reshape(28, 28))


@dataclass(frozen=True)
class EffectiveLabel:
    label: str
    source: LabelSource


def in_force_allows_training() -> ColumnElement[bool]:
    """The grant in force of the doodle's player (their latest not withdrawn) allows
    training: a withdrawal, or a new grant without `train`, ends it for every earlier
    doodle; a new grant that allows training keeps them trainable."""
    in_force = aliased(Consent)
    latest = (
        select(in_force.train)
        .where(in_force.player_id == Recognition.player_id, in_force.withdrawn_at.is_(None))
        .order_by(in_force.granted_at.desc(), in_force.id.desc())
        .limit(1)
        .correlate(Recognition)
        .scalar_subquery()
    )
    return func.coalesce(latest, False).is_(True)


def trainable_game_doodle() -> ColumnElement[bool]:
    """SQL condition on `recognitions` joined (outer) with `consents` and `players`: a
    game doodle whose snapshot allows training, whose consent row still exists (an erased
    player's consents are deleted, which nulls consent_id), whose player is not erased,
    and whose player's consent in force allows training now (`in_force_allows_training`).

    Use with `.outerjoin(Consent, Consent.id == Recognition.consent_id)
    .outerjoin(Player, Player.id == Consent.player_id)`.
    """
    return and_(
        Recognition.origin == RecognitionOrigin.game,
        Recognition.consent_train.is_(True),
        Consent.id.is_not(None),
        Player.id.is_not(None),
        Player.erased_at.is_(None),
        in_force_allows_training(),
    )


def may_train() -> ColumnElement[bool]:
    """Imports always; game doodles per `trainable_game_doodle` (same joins)."""
    return or_(Recognition.origin == RecognitionOrigin.import_, trainable_game_doodle())


def with_consent_joins(stmt: Select) -> Select:
    """`stmt` (selecting from recognitions) outer-joined with what `may_train` looks at."""
    return stmt.outerjoin(Consent, Consent.id == Recognition.consent_id).outerjoin(
        Player, Player.id == Consent.player_id
    )


def decided_by_reviewer() -> ColumnElement[bool]:
    """SQL condition on `reviews`: a reviewer resolved it (`review_doodle` labelled it or
    `discard_doodle` discarded it). Resolved rows without `resolved_by` are not decisions."""
    return and_(Review.status == ReviewStatus.resolved, Review.resolved_by.is_not(None))


def trainable_word(label: ColumnElement[str], source: ColumnElement[Any]) -> ColumnElement[bool]:
    """SQL condition on a doodle's effective `label` and its `source`: the label may train.
    A reviewer's label of a word reviewers proposed (not confirmed yet) or an admin
    rejected does not (`words`, db.vocabulary); a known word's, or any other source's, does.
    """
    held = exists().where(Word.word == label, Word.status != WordStatus.confirmed)
    return or_(source != LabelSource.reviewer, ~held)


def _has_label(*sources: LabelSource) -> ColumnElement[bool]:
    return exists().where(Label.recognition_id == Recognition.id, Label.source.in_(sources))


def relabel_candidates(s: Session, *, limit: int | None = None) -> list[Candidate]:
    """Game doodles done, with a bitmap and a prompt word, that may be trained on and that
    nobody has decided about yet: no reviewer label, no pending review, no review a
    reviewer resolved (labelled or discarded, see `review_doodle`), no automatic label
    (so relabelling is incremental). Oldest first.

    Doodles without a prompt word are left out: there is no weak label to check.
    """
    stmt = (
        with_consent_joins(select(Recognition.id, Recognition.word, Recognition.bitmap))
        .where(
            Recognition.status == RecognitionStatus.done,
            Recognition.bitmap.is_not(None),
            Recognition.word.is_not(None),
            trainable_game_doodle(),
            ~_has_label(LabelSource.reviewer, *AUTOMATIC),
            ~exists().where(
                Review.recognition_id == Recognition.id,
                or_(Review.status == ReviewStatus.pending, decided_by_reviewer()),
            ),
        )
        .order_by(Recognition.created_at, Recognition.id)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return [Candidate(id=row.id, word=row.word, bitmap=row.bitmap) for row in s.execute(stmt)]


def add_label(
    s: Session, recognition_id: uuid.UUID, label: str, source: LabelSource, actor: str
) -> None:
    """Record one label with its provenance."""
    add_labels(s, [(recognition_id, label)], source, actor)


def add_labels(
    s: Session,
    items: Iterable[tuple[uuid.UUID, str]],
    source: LabelSource,
    actor: str,
) -> int:
    """Record many labels of one source in one statement; returns how many."""
    rows = [
        {"recognition_id": rid, "label": label, "source": source, "actor": actor}
        for rid, label in items
    ]
    if rows:
        s.execute(insert(Label), rows)
    return len(rows)


def rank_of_source() -> ColumnElement[int]:
    """SQL: the precedence of `labels.source` (see SOURCE_RANK)."""
    return case(
        *((Label.source == source, rank) for source, rank in SOURCE_RANK.items()),
        else_=0,
    )


def effective_label_query() -> Select:
    """SQL (recognition_id, label, source): each labelled doodle's winning label, by
    precedence, then latest within the tier. Join it as a subquery.

    Once a reviewer has resolved a doodle's review only `reviewer` labels count: a doodle
    a reviewer discarded (resolved, no reviewer label) has no effective label, whatever
    the flows or the dataset said about it, so it is never trained or evaluated on.
    """
    return (
        select(Label.recognition_id, Label.label, Label.source)
        .where(
            or_(
                Label.source == LabelSource.reviewer,
                ~exists().where(
                    Review.recognition_id == Label.recognition_id, decided_by_reviewer()
                ),
            )
        )
        .ext(distinct_on(Label.recognition_id))
        .order_by(
            Label.recognition_id,
            rank_of_source().desc(),
            Label.created_at.desc(),
            Label.id.desc(),
        )
    )


def effective_labels(
    s: Session, recognition_ids: Iterable[uuid.UUID] | None = None
) -> dict[uuid.UUID, EffectiveLabel]:
    """The winning label of each given doodle (of every labelled doodle when None);
    doodles without labels are absent."""
    stmt = effective_label_query()
    if recognition_ids is not None:
        ids = list(recognition_ids)
        if not ids:
            return {}
        stmt = stmt.where(Label.recognition_id.in_(ids))
    return {row.recognition_id: EffectiveLabel(row.label, row.source) for row in s.execute(stmt)}


MAX_LABEL_LENGTH = 64

# Typographic variants a keyboard or a phone types, mapped to the word's own marks
# (NFKC leaves them: they are distinct characters, not compatibility forms).
_MARKS = str.maketrans(
    {
        "\u2019": "'",  # right single quotation mark (o’clock)
        "\u2018": "'",  # left single quotation mark
        "\u02bc": "'",  # modifier letter apostrophe
        "\u2010": "-",  # hyphen
        "\u2011": "-",  # non-breaking hyphen
        "\u2012": "-",  # figure dash
        "\u2013": "-",  # en dash
        "\u2212": "-",  # minus sign
    }
)
SEPARATORS = frozenset(" -'")
WORD_RULE = (
    "a word is letters (any script), with single spaces, hyphens or apostrophes between "
    "them, e.g. 't-shirt', 'ice cream', 'the eiffel tower'"
)


class InvalidLabel(ValueError):
    """Not a word: empty, too long, not a string, or not letters with single spaces,
    hyphens or apostrophes between them."""


def normalize_text(text: str) -> str:
    """`text` as labels are compared and stored: Unicode NFKC (compatibility forms such as
    full-width letters and ligatures become the plain ones), lower case, typographic
    apostrophes and hyphens made plain, trimmed, inner whitespace collapsed to one space.
    No check that it is a word: see `normalize_word`."""
    text = unicodedata.normalize("NFKC", text).lower().translate(_MARKS)
    # Lower-casing can decompose ("İ" -> "i" + combining dot): compose again.
    return unicodedata.normalize("NFC", " ".join(text.split()))


def _is_letter(char: str) -> bool:
    return unicodedata.category(char)[0] == "L"


def _is_mark(char: str) -> bool:
    # Combining marks belong to the letter before them (Devanagari vowel signs, accents).
    return unicodedata.category(char)[0] == "M"


def word_syntax_error(word: str) -> str | None:
    """Why a normalised text is not a word; None when it is one."""
    if not word:
        return "a word must not be blank"
    if len(word) > MAX_LABEL_LENGTH:
        return f"a word has at most {MAX_LABEL_LENGTH} characters (once normalised)"
    previous = ""
    for char in word:
        if _is_letter(char):
            pass
        elif _is_mark(char):
            if not previous or previous in SEPARATORS:
                return f"{word!r} is not a word: a combining mark must follow a letter"
        elif char in SEPARATORS:
            if not previous or previous in SEPARATORS:
                return f"{word!r} is not a word: {WORD_RULE}"
        else:
            return f"{word!r} is not a word ({char!r} is not a letter): {WORD_RULE}"
        previous = char
    if previous in SEPARATORS:
        return f"{word!r} is not a word: {WORD_RULE}"
    return None


def normalize_word(label: object) -> str:
    """A label as stored: `normalize_text`, then checked to be a word (letters of any
    script, single spaces, hyphens or apostrophes between them, at most
    MAX_LABEL_LENGTH characters). Raises InvalidLabel saying why not.

    The one rule for every label people give (reviewers, admins, the admin page) and for
    prompt words that are to become labels."""
    if not isinstance(label, str):
        raise InvalidLabel(f"a label must be a text: {WORD_RULE}")
    word = normalize_text(label)
    why = word_syntax_error(word)
    if why is not None:
        raise InvalidLabel(why)
    return word


def is_word(text: object) -> bool:
    """Is `text` a word once normalised (`normalize_word` would accept it)?"""
    try:
        normalize_word(text)
    except InvalidLabel:
        return False
    return True


# The name callers used before labels had to be words.
normalize_label = normalize_word
