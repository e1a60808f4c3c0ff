"""Idempotency keys: a client's retry of POST /v1/recognitions or POST /v1/players with
the same Idempotency-Key answers for what the first request made, and records nothing
twice. A key names the recognition or the player it made, and goes with it (ON DELETE
CASCADE: erasure, retention); keys older than DOODLE_IDEMPOTENCY_TTL_HOURS are pruned by
the retention flow.

Revision ID: 20261208_0008
Revises: 20261127_0007
Create Date: 2026-12-08 01:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261208_0008"
down_revision: str | Sequence[str] | None = "20261127_0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("client_key_id", sa.String(16), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("recognition_id", sa.Uuid(), nullable=True),
        sa.Column("player_id", sa.String(64), nullable=True),
        sa.Column("nonce", sa.String(64), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("client_key_id", "key", name="pk_idempotency_keys"),
        sa.ForeignKeyConstraint(
            ["recognition_id"],
            ["recognitions.id"],
            name="fk_idempotency_keys_recognition_id_recognitions",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["player_id"],
            ["players.id"],
            name="fk_idempotency_keys_player_id_players",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            "(recognition_id IS NULL) <> (player_id IS NULL)",
            name="ck_idempotency_keys_one_target",
        ),
    )
    op.create_index("ix_idempotency_keys_recognition_id", "idempotency_keys", ["recognition_id"])
    op.create_index("ix_idempotency_keys_player_id", "idempotency_keys", ["player_id"])
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_table("idempotency_keys")  # drops its indexes and constraints
