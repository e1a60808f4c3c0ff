"""Deferred object writes and fast recovery of dead workers' doodles.

- recognitions.stored_at: when the doodle's object was written to object storage. A
  finished doodle with consent to store keeps its strokes in the row until then, so an
  object-storage outage delays the write instead of losing the doodle.
- ix_recognitions_unfinished (partial, on enqueued_at): the sweeper's look for queued or
  running doodles nobody finished.
- ix_recognitions_store_pending (partial, on finished_at): finished doodles whose object
  is still to be written.

Rows finished before this revision with a stored object get stored_at = finished_at.

Revision ID: 20261125_0003
Revises: 20261125_0002
Create Date: 2026-11-25 21:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261125_0003"
down_revision: str | Sequence[str] | None = "20261125_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("recognitions", sa.Column("stored_at", sa.DateTime(timezone=True)))
    op.execute(
        "UPDATE recognitions SET stored_at = finished_at "
        "WHERE strokes_key IS NOT NULL OR png_key IS NOT NULL"
    )
    op.create_index(
        "ix_recognitions_unfinished",
        "recognitions",
        ["enqueued_at"],
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )
    op.create_index(
        "ix_recognitions_store_pending",
        "recognitions",
        ["finished_at"],
        postgresql_where=sa.text("status = 'done' AND consent_store AND stored_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_recognitions_store_pending", table_name="recognitions")
    op.drop_index("ix_recognitions_unfinished", table_name="recognitions")
    op.drop_column("recognitions", "stored_at")
