"""Test drawings beyond the golden split: the drawings no scored version was trained on.

The golden set (db.datasets) is a 0.2 hash split of the imported and reviewed drawings; on
a default install it holds about 100 drawings of the starting words, too few for the gate
to see a 2-point fall. The fine-tune trains on a per-word replay sample of the other,
non-golden drawings (`DOODLE_REPLAY_PER_WORD`), and every version records the
recognitions it was trained on (db.lineage). An imported or reviewer-labelled drawing
that neither a version nor any of its ancestors was trained on is as unseen as a golden
one: it is a test drawing too.

Which drawings are never-trained follows from hashes of their ids (the replay sample)
and the lineage, never from what a model predicted, so they are no easier or harder for
either version than the golden ones. Only reviewer and import labels count (as for the
golden set): a prompt label the relabelling accepted is one production agreed with.

"Trained on" compares the drawings themselves (their bitmaps), not only their rows: a
drawing imported or posted twice whose twin was trained on is not a test drawing.

Every function takes a `Session` and never commits.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.datasets import GOLDEN_SOURCES, Examples, build_examples, eligible_rows
from db.lineage import version_tree
from db.models import LabelSource, ModelVersionExample, Recognition


def lineage(s: Session, version_ids: Collection[int]) -> set[int]:
    """The versions and all their ancestors (parent, grandparent, ...)."""
    tree = version_tree(s)
    found: set[int] = set()
    for version_id in version_ids:
        current: int | None = version_id
        while current is not None and current not in found:
            found.add(current)
            node = tree.get(current)
            current = node.parent_id if node is not None else None
    return found


def never_trained_examples(
    s: Session, *, version_ids: Collection[int], words: Collection[str]
) -> Examples:
    """Eligible drawings of `words` labelled by a reviewer or an import that none of
    `version_ids` nor any of their ancestors was trained on, by id (golden ones included:
    the caller leaves out those it already has). Two queries."""
    if not words:
        return Examples.empty()
    versions = sorted(lineage(s, version_ids))
    # The sources are filtered here: in the query, the planner took the effective labels'
    # subquery for one row and the statement ran 30 s on a default install's 6,900 drawings.
    rows = [r for r in eligible_rows(s, set(words)) if LabelSource(r[2]) in GOLDEN_SOURCES]
    if versions:
        # Compared here, by a set of the trained drawings: as a correlated EXISTS on the
        # bitmaps Postgres rescanned every trained row for each candidate (minutes).
        trained = set(
            s.scalars(
                select(Recognition.bitmap)
                .join(ModelVersionExample, ModelVersionExample.recognition_id == Recognition.id)
                .where(ModelVersionExample.model_version_id.in_(versions))
                .distinct()
            )
        )
        rows = [r for r in rows if r[3] not in trained]
    return build_examples(rows)


def with_never_trained(test: Examples, extra: Examples) -> tuple[Examples, list[bool]]:
    """`test` followed by the drawings of `extra` it does not hold (by id, and by drawing:
    a twin of a test drawing is not added twice); per drawing, True for the added ones."""
    have_ids = set(test.ids)
    have_drawings = {bytes(b) for b in test.bitmaps.reshape(len(test), -1)}
    keep = [
        i
        for i, (rid, bitmap) in enumerate(zip(extra.ids, extra.bitmaps, strict=True))
        if rid not in have_ids and bitmap.tobytes() not in have_drawings
    ]
    added = extra.take(keep)
    return Examples.concat([test, added]), [False] * len(test) + [True] * len(added)
