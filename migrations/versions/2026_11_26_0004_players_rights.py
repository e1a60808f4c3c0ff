"""Players' data rights: erasure requests with their receipt, and model lineage.

- erasures becomes a request that is worked until done and then is the receipt:
  public_id (what the API hands out to poll), status (pending, done), player_id (the
  player to erase, cleared when done: the receipt keeps only player_ref, a keyed hash),
  requested_by, deleted (how many of each kind were removed), model_versions (the
  versions trained on the player's doodles), replaced_by_version (the version that
  took their place in service), attempts, lease_until and last_error (a worker's claim
  and why the last attempt failed). recognitions_deleted and objects_deleted give way
  to `deleted`.
- model_version_examples: which recognitions each version was trained on, so an
  erasure can name and mark them (model_versions.erased_data_at) and the next
  fine-tune can start from an ancestor that never saw the erased doodles.

Revision ID: 20261126_0004
Revises: 20261125_0003
Create Date: 2026-11-26 02:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "20261126_0004"
down_revision: str | Sequence[str] | None = "20261125_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_column("erasures", "recognitions_deleted")
    op.drop_column("erasures", "objects_deleted")
    op.add_column(
        "erasures",
        sa.Column(
            "public_id",
            sa.Uuid(),
            server_default=sa.text("gen_random_uuid()"),
            nullable=False,
        ),
    )
    op.create_unique_constraint("uq_erasures_public_id", "erasures", ["public_id"])
    op.add_column(
        "erasures",
        sa.Column("status", sa.String(16), server_default="pending", nullable=False),
    )
    op.create_check_constraint("ck_erasures_status", "erasures", "status IN ('pending', 'done')")
    op.add_column("erasures", sa.Column("player_id", sa.String(64), nullable=True))
    op.add_column(
        "erasures",
        sa.Column("requested_by", sa.String(128), server_default="", nullable=False),
    )
    op.add_column(
        "erasures",
        sa.Column(
            "deleted",
            postgresql.JSONB(),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
    )
    op.add_column(
        "erasures",
        sa.Column(
            "model_versions",
            postgresql.JSONB(),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
    )
    op.add_column(
        "erasures",
        sa.Column(
            "replaced_by_version",
            sa.Integer(),
            sa.ForeignKey(
                "model_versions.id", name="fk_erasures_replaced_by_version_model_versions"
            ),
            nullable=True,
        ),
    )
    op.add_column(
        "erasures", sa.Column("attempts", sa.Integer(), server_default="0", nullable=False)
    )
    op.add_column("erasures", sa.Column("lease_until", sa.DateTime(timezone=True)))
    op.add_column("erasures", sa.Column("last_error", sa.Text()))
    op.create_index(
        "ix_erasures_pending",
        "erasures",
        ["requested_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )

    op.add_column("model_versions", sa.Column("erased_data_at", sa.DateTime(timezone=True)))
    op.create_table(
        "model_version_examples",
        sa.Column(
            "model_version_id",
            sa.Integer(),
            sa.ForeignKey(
                "model_versions.id",
                name="fk_model_version_examples_model_version_id_model_versions",
                ondelete="CASCADE",
            ),
            nullable=False,
        ),
        sa.Column(
            "recognition_id",
            sa.Uuid(),
            sa.ForeignKey(
                "recognitions.id",
                name="fk_model_version_examples_recognition_id_recognitions",
                ondelete="CASCADE",
            ),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint(
            "model_version_id", "recognition_id", name="pk_model_version_examples"
        ),
    )
    op.create_index(
        "ix_model_version_examples_recognition_id",
        "model_version_examples",
        ["recognition_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_model_version_examples_recognition_id", "model_version_examples")
    op.drop_table("model_version_examples")
    op.drop_column("model_versions", "erased_data_at")
    op.drop_index("ix_erasures_pending", table_name="erasures")
    for column in (
        "last_error",
        "lease_until",
        "attempts",
        "replaced_by_version",
        "model_versions",
        "deleted",
        "requested_by",
        "player_id",
    ):
        op.drop_column("erasures", column)
    op.drop_constraint("ck_erasures_status", "erasures", type_="check")
    op.drop_column("erasures", "status")
    op.drop_constraint("uq_erasures_public_id", "erasures", type_="unique")
    op.drop_column("erasures", "public_id")
    op.add_column(
        "erasures",
        sa.Column("recognitions_deleted", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column(
        "erasures",
        sa.Column("objects_deleted", sa.Integer(), server_default="0", nullable=False),
    )
