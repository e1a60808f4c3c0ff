"""Training data and the review queue: origins, bitmaps and external ids of doodles; reviews.

- recognitions.origin (game | import, VARCHAR + CHECK, server default 'game'),
  recognitions.external_id (unique; e.g. quickdraw:<key_id>), recognitions.bitmap (the
  28x28 raster, bytea), index ix_recognitions_origin_status.
- input_format gains 'bitmap' (imports of the dataset's .npy bitmaps).
- labels: ix_labels_recognition_id becomes ix_labels_recognition_id_source.
- reviews: one per doodle at most, with reason, status (pending | resolved), resolution.

The downgrade deletes imported drawings (origin 'import', with their labels) since the
earlier schema cannot tell them from players' doodles, then undoes all of the above.

Revision ID: 20261125_0002
Revises: 20261125_0001
Create Date: 2026-11-25 18:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261125_0002"
down_revision: str | Sequence[str] | None = "20261125_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_INPUT_FORMATS = ("simplified", "raw", "png")


def upgrade() -> None:
    # Allowed inside a transaction since PostgreSQL 12 (the value is not used here).
    op.execute("ALTER TYPE input_format ADD VALUE IF NOT EXISTS 'bitmap'")

    op.add_column(
        "recognitions",
        sa.Column("origin", sa.String(16), server_default=sa.text("'game'"), nullable=False),
    )
    op.create_check_constraint(
        "ck_recognitions_recognition_origin", "recognitions", "origin IN ('game', 'import')"
    )
    op.add_column("recognitions", sa.Column("external_id", sa.String(128), nullable=True))
    op.create_unique_constraint("uq_recognitions_external_id", "recognitions", ["external_id"])
    op.add_column("recognitions", sa.Column("bitmap", sa.LargeBinary(), nullable=True))
    op.create_index("ix_recognitions_origin_status", "recognitions", ["origin", "status"])

    # The composite index serves every lookup the single-column one did.
    op.create_index("ix_labels_recognition_id_source", "labels", ["recognition_id", "source"])
    op.drop_index("ix_labels_recognition_id", table_name="labels")

    op.create_table(
        "reviews",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("recognition_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), server_default=sa.text("'pending'"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(128), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_reviews"),
        sa.ForeignKeyConstraint(
            ["recognition_id"],
            ["recognitions.id"],
            name="fk_reviews_recognition_id_recognitions",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("recognition_id", name="uq_reviews_recognition_id"),
        sa.CheckConstraint("status IN ('pending', 'resolved')", name="ck_reviews_review_status"),
    )
    op.create_index("ix_reviews_status_created_at", "reviews", ["status", "created_at"])


def downgrade() -> None:
    op.drop_table("reviews")  # drops its index and constraints

    op.create_index("ix_labels_recognition_id", "labels", ["recognition_id"])
    op.drop_index("ix_labels_recognition_id_source", table_name="labels")

    # Imports would otherwise pass for anonymous players' doodles (labels cascade).
    op.execute("DELETE FROM recognitions WHERE origin = 'import'")
    op.drop_index("ix_recognitions_origin_status", table_name="recognitions")
    op.drop_column("recognitions", "bitmap")
    op.drop_constraint("uq_recognitions_external_id", "recognitions", type_="unique")
    op.drop_column("recognitions", "external_id")
    op.drop_constraint("ck_recognitions_recognition_origin", "recognitions", type_="check")
    op.drop_column("recognitions", "origin")

    # PostgreSQL cannot drop an enum value: rebuild the type without 'bitmap'.
    op.execute("ALTER TYPE input_format RENAME TO input_format_0002")
    values = ", ".join(f"'{v}'" for v in OLD_INPUT_FORMATS)
    op.execute(f"CREATE TYPE input_format AS ENUM ({values})")
    op.execute(
        "ALTER TABLE recognitions ALTER COLUMN input_format "
        "TYPE input_format USING input_format::text::input_format"
    )
    op.execute("DROP TYPE input_format_0002")
