"""The labels' vocabulary: which words a reviewer's label may be.

A word is *known* when the production model has it as a class, when imported dataset
drawings carry it (labels of source `import`), or when an admin confirmed it (`words`,
status `confirmed`). A reviewer may propose a new word (`propose`): it is stored as
`proposed` and its reviewer labels do not train (db.labels.trainable_word) until an
admin confirms it (`decide`); an admin may also reject it.

Every function takes a Session and never commits; the caller owns the transaction.
Words are compared as stored: normalised by db.labels.normalize_word.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import exists, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, aliased

from db.labels import effective_label_query
from db.models import (
    Label,
    LabelSource,
    ModelAlias,
    ModelVersion,
    Word,
    WordStatus,
)
from db.registry import Alias


@dataclass(frozen=True)
class WordInfo:
    word: str
    status: WordStatus
    proposed_by: str | None
    proposed_at: dt.datetime
    decided_by: str | None
    decided_at: dt.datetime | None
    doodles: int  # doodles whose label in force is a reviewer's label of this word


def production_classes(s: Session) -> list[str]:
    """The classes of the version the `production` alias points at (none: [])."""
    classes = s.scalar(
        select(ModelVersion.classes)
        .join(ModelAlias, ModelAlias.model_version_id == ModelVersion.id)
        .where(ModelAlias.name == Alias.PRODUCTION.value)
    )
    return list(classes or [])


def _imported(s: Session, words: list[str]) -> set[str]:
    """Which of `words` imported drawings carry (one index probe each)."""
    if not words:
        return set()
    rows = s.scalars(
        select(Label.label)
        .where(Label.label.in_(words), Label.source == LabelSource.import_)
        .distinct()
    )
    return set(rows)


# Every distinct word of the imported drawings, one index probe per word (a loose index
# scan on ix_labels_label_source) rather than reading every imported label.
_IMPORTED_WORDS = text(
    """
    WITH RECURSIVE w(label) AS (
        (SELECT label FROM labels WHERE source = 'import' ORDER BY label LIMIT 1)
        UNION ALL
        SELECT (
            SELECT l.label FROM labels l
            WHERE l.source = 'import' AND l.label > w.label
            ORDER BY l.label LIMIT 1
        )
        FROM w WHERE w.label IS NOT NULL
    )
    SELECT label FROM w WHERE label IS NOT NULL
    """
)


def imported_words(s: Session) -> set[str]:
    """Every word imported dataset drawings carry."""
    return set(s.scalars(_IMPORTED_WORDS))


def statuses(s: Session, words: Iterable[str]) -> dict[str, WordStatus]:
    """The `words` rows of these words (words never proposed nor decided are absent)."""
    wanted = sorted(set(words))
    if not wanted:
        return {}
    rows = s.execute(select(Word.word, Word.status).where(Word.word.in_(wanted)))
    return {word: WordStatus(status) for word, status in rows}


def known(s: Session, words: Iterable[str]) -> set[str]:
    """Which of `words` are known: production's classes, imported, or confirmed."""
    wanted = sorted(set(words))
    found = set(wanted) & set(production_classes(s))
    rest = [w for w in wanted if w not in found]
    found |= _imported(s, rest)
    found |= {w for w, st in statuses(s, rest).items() if st is WordStatus.confirmed}
    return found


def known_words(s: Session) -> set[str]:
    """Every known word (for suggestions): production's classes, imported, confirmed."""
    confirmed = s.scalars(select(Word.word).where(Word.status == WordStatus.confirmed))
    return set(production_classes(s)) | imported_words(s) | set(confirmed)


def is_model_or_dataset_word(s: Session, word: str) -> bool:
    """Production knows `word`, or imported drawings carry it (no admin decides those)."""
    if word in production_classes(s):
        return True
    return bool(
        s.scalar(select(exists().where(Label.label == word, Label.source == LabelSource.import_)))
    )


def propose(s: Session, words: Iterable[str], *, actor: str) -> list[str]:
    """Record `words` as proposed by `actor`; words already proposed, confirmed or
    rejected are left as they are. Returns the words proposed now."""
    rows = [{"word": w, "status": WordStatus.proposed, "proposed_by": actor} for w in words]
    if not rows:
        return []
    result = s.execute(
        insert(Word)
        .values(rows)
        .on_conflict_do_nothing(index_elements=[Word.word])
        .returning(Word.word)
    )
    return sorted(result.scalars())


def decide(s: Session, word: str, status: WordStatus, *, actor: str) -> WordStatus | None:
    """An admin's decision about `word` (confirmed or rejected), proposed or not; returns
    the status it had before (None: it was not in the table)."""
    before = statuses(s, [word]).get(word)
    now = func.now()
    s.execute(
        insert(Word)
        .values(word=word, status=status, decided_by=actor, decided_at=now)
        .on_conflict_do_update(
            index_elements=[Word.word],
            set_={"status": status, "decided_by": actor, "decided_at": now},
        )
    )
    return before


def reviewer_doodles(s: Session, words: Iterable[str]) -> dict[str, int]:
    """Per word: how many doodles have a reviewer's label of it as their label in force."""
    wanted = sorted(set(words))
    if not wanted:
        return {}
    mine = aliased(Label)
    eff = (
        effective_label_query()
        .where(
            Label.recognition_id.in_(
                select(mine.recognition_id).where(
                    mine.label.in_(wanted), mine.source == LabelSource.reviewer
                )
            )
        )
        .subquery("eff")
    )
    rows = s.execute(
        select(eff.c.label, func.count())
        .where(eff.c.label.in_(wanted), eff.c.source == LabelSource.reviewer)
        .group_by(eff.c.label)
    )
    return {word: int(n) for word, n in rows}


def get_word(s: Session, word: str) -> WordInfo | None:
    found = list_words(s, words=[word])
    return found[0] if found else None


def list_words(
    s: Session,
    *,
    status: WordStatus | None = None,
    words: list[str] | None = None,
    limit: int | None = None,
) -> list[WordInfo]:
    """Words of the table, oldest proposed first, with their reviewer doodles' counts."""
    stmt = select(Word).order_by(Word.proposed_at, Word.word)
    if status is not None:
        stmt = stmt.where(Word.status == status)
    if words is not None:
        stmt = stmt.where(Word.word.in_(words))
    if limit is not None:
        stmt = stmt.limit(limit)
    rows = list(s.scalars(stmt))
    counts = reviewer_doodles(s, [r.word for r in rows])
    return [
        WordInfo(
            word=r.word,
            status=WordStatus(r.status),
            proposed_by=r.proposed_by,
            proposed_at=r.proposed_at,
            decided_by=r.decided_by,
            decided_at=r.decided_at,
            doodles=counts.get(r.word, 0),
        )
        for r in rows
    ]
