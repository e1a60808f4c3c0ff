"""The labels' vocabulary: words reviewers proposed and admins confirmed or rejected.

A reviewer's label must be a known word (a class of the production model, a word of the
imported dataset, or a word in this table an admin confirmed), unless the reviewer
proposes it as a new word: then the word is stored here as `proposed`, and its reviewer
labels do not train until an admin confirms it (or ever, once rejected).

Revision ID: 20261127_0007
Revises: 20261126_0006
Create Date: 2026-11-27 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261127_0007"
down_revision: str | Sequence[str] | None = "20261126_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "words",
        sa.Column("word", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("proposed_by", sa.String(128), nullable=True),
        sa.Column(
            "proposed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("decided_by", sa.String(128), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("word", name="pk_words"),
        sa.CheckConstraint(
            "status IN ('proposed', 'confirmed', 'rejected')", name="ck_words_word_status"
        ),
    )
    op.create_index("ix_words_status_proposed_at", "words", ["status", "proposed_at"])


def downgrade() -> None:
    op.drop_table("words")  # drops its index and constraint
