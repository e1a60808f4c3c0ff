"""Flywheel cycles that are requested, and never two at once.

- training_runs gains who asked for the cycle and why (requested_by: "admin:<id>",
  "trigger", "schedule", "cli"; reason: e.g. "230 new labels"), when it was asked
  for (requested_at), its Prefect flow run (flow_run_id) and the stage it is at
  (stage: relabel, finetune, evaluate, ...), so a page can show its progress.
- A cycle may be "requested" before a flow takes it; at most one cycle is requested
  or running at any time: a unique index over a constant expression, partial on
  those two statuses, lets the database refuse the second one.

Revision ID: 20261126_0005
Revises: 20261126_0004
Create Date: 2026-11-26 04:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261126_0005"
down_revision: str | Sequence[str] | None = "20261126_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE = "status IN ('requested', 'running')"


def upgrade() -> None:
    op.add_column(
        "training_runs",
        sa.Column("requested_by", sa.String(128), server_default="", nullable=False),
    )
    op.add_column(
        "training_runs", sa.Column("reason", sa.Text(), server_default="", nullable=False)
    )
    op.add_column(
        "training_runs",
        sa.Column(
            "requested_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
    )
    op.add_column("training_runs", sa.Column("flow_run_id", sa.String(64), nullable=True))
    op.add_column("training_runs", sa.Column("stage", sa.String(32), nullable=True))
    # Runs recorded before this revision were requested when they started.
    op.execute("UPDATE training_runs SET requested_at = started_at")
    op.create_index(
        "uq_training_runs_one_active",
        "training_runs",
        [sa.text("(true)")],
        unique=True,
        postgresql_where=sa.text(ACTIVE),
    )
    op.create_index("ix_training_runs_started_at", "training_runs", ["started_at"])


def downgrade() -> None:
    op.drop_index("ix_training_runs_started_at", table_name="training_runs")
    op.drop_index("uq_training_runs_one_active", table_name="training_runs")
    for column in ("stage", "flow_run_id", "requested_at", "reason", "requested_by"):
        op.drop_column("training_runs", column)
