"""Indexes for the admin's grid of collected doodles (GET /v1/admin/doodles).

The grid lists kept game doodles newest first, a keyset page at a time, alone or
filtered by prompt word, predicted word, model version or player. Each of these walks
its own index of (that column, created_at, id), partial on the rows the grid can list
(`origin = 'game' AND consent_store AND status = 'done'`), so the first page and a deep
page cost the same on a million doodles (scripts/admin_listing_bench.py). Doodles still
queued or running are not in them: the worker's writes before a doodle is done do not
pay for them.

Filters by label or label source start from labels (label, source, recognition_id) and
(source, recognition_id) when few doodles match; the grid hides erased players and
players being erased through two small partial indexes (players erased, erasures
pending, by player).

Revision ID: 20261126_0006
Revises: 20261126_0005
Create Date: 2026-11-26 04:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261126_0006"
down_revision: str | Sequence[str] | None = "20261126_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LISTABLE = "origin = 'game' AND consent_store AND status = 'done'"
INDEXES = {
    "ix_recognitions_listing": [],
    "ix_recognitions_listing_word": ["word"],
    "ix_recognitions_listing_label": ["label"],
    "ix_recognitions_listing_model": ["model_version_id"],
    "ix_recognitions_listing_player": ["player_id"],
}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(
            name,
            "recognitions",
            [*columns, "created_at", "id"],
            postgresql_where=sa.text(LISTABLE),
        )
    op.create_index("ix_labels_label_source", "labels", ["label", "source", "recognition_id"])
    op.create_index("ix_labels_source", "labels", ["source", "recognition_id"])
    op.create_index(
        "ix_players_erased", "players", ["id"], postgresql_where=sa.text("erased_at IS NOT NULL")
    )
    op.create_index(
        "ix_erasures_pending_player",
        "erasures",
        ["player_id"],
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index("ix_erasures_pending_player", table_name="erasures")
    op.drop_index("ix_players_erased", table_name="players")
    op.drop_index("ix_labels_source", table_name="labels")
    op.drop_index("ix_labels_label_source", table_name="labels")
    for name in INDEXES:
        op.drop_index(name, table_name="recognitions")
