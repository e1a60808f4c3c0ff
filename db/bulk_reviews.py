"""A reviewer's decision about many doodles at once, in a handful of statements.

The same decision `db.reviews.review_doodle` / `discard_doodle` make for one doodle (a
reviewer label, the review resolved or created resolved as a spot check, one audit row
per doodle with the same details), made set-wise: one lock, one insert of labels, one
upsert of reviews, one insert of audit rows, whatever the number of doodles. A loop of
single decisions took about 12 ms a doodle (2-3 s for 200).

Every function takes a Session and never commits; the caller owns the transaction.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from db.labels import add_labels
from db.models import AuditLog, LabelSource, Recognition, Review, ReviewStatus
from db.reviews import SPOT_CHECK


def lock(s: Session, ids: list[uuid.UUID]) -> None:
    """Lock the doodles' rows (in id order: two bulk decisions never deadlock) so that
    the checks made next still hold when the decision is written."""
    s.execute(
        select(Recognition.id)
        .where(Recognition.id.in_(ids))
        .order_by(Recognition.id)
        .with_for_update()
    )


def _before(s: Session, ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    """For the audit rows: each doodle's review as it was before the decision."""
    found = {
        row.recognition_id: {
            "previous_status": ReviewStatus(row.status).value,
            "reason": row.reason,
        }
        for row in s.execute(
            select(Review.recognition_id, Review.status, Review.reason).where(
                Review.recognition_id.in_(ids)
            )
        )
    }
    return {rid: found.get(rid, {"previous_status": None, "reason": SPOT_CHECK}) for rid in ids}


def _resolve(s: Session, ids: list[uuid.UUID], actor: str) -> dict[uuid.UUID, int]:
    """`db.reviews._resolve` for many doodles: their review ids."""
    now = func.now()
    values = pg_insert(Review).values(
        [
            {
                "recognition_id": rid,
                "reason": SPOT_CHECK,
                "status": ReviewStatus.resolved,
                "resolved_at": now,
                "resolved_by": actor,
            }
            for rid in ids
        ]
    )
    stmt = values.on_conflict_do_update(
        index_elements=[Review.recognition_id],
        set_={"status": ReviewStatus.resolved, "resolved_at": now, "resolved_by": actor},
    ).returning(Review.recognition_id, Review.id)
    return {row.recognition_id: int(row.id) for row in s.execute(stmt)}


def decide(s: Session, decisions: dict[uuid.UUID, str | None], *, actor: str) -> None:
    """Record each doodle's decision: a label (a `reviewer` label) or None (a discard).
    The caller has locked the rows (`lock`) and checked that each may take its decision
    (db.doodle_listing's checks, those of db.reviews)."""
    ids = list(decisions)
    if not ids:
        return
    before = _before(s, ids)
    labelled = [(rid, label) for rid, label in decisions.items() if label is not None]
    add_labels(s, labelled, LabelSource.reviewer, actor)
    review_ids = _resolve(s, ids, actor)
    rows = []
    for rid, label in decisions.items():
        details: dict[str, Any] = {"review_id": review_ids[rid]}
        if label is not None:
            details["label"] = label
        rows.append(
            {
                "actor": actor,
                "action": "review.discard" if label is None else "review.label",
                "subject": f"recognition:{rid}",
                "details": {**details, **before[rid]},
            }
        )
    s.execute(insert(AuditLog), rows)
