"""Initial schema: players and consents, doodles and their labels, the model registry.

Creates every table, enum type and index of `db.models` as of this revision:
players, consents, model_versions, model_aliases, model_alias_history,
recognitions, labels, training_runs, erasures, audit_log; enum types
input_format, recognition_status, label_source. The downgrade drops them all.

Revision ID: 20261125_0001
Revises:
Create Date: 2026-11-25 15:44:50
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "20261125_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Enum types are created and dropped explicitly (create_type=False keeps create_table
# from doing it a second time).
input_format = postgresql.ENUM("simplified", "raw", "png", name="input_format", create_type=False)
recognition_status = postgresql.ENUM(
    "queued", "running", "done", "failed", name="recognition_status", create_type=False
)
label_source = postgresql.ENUM(
    "prompt", "model", "reviewer", "import", name="label_source", create_type=False
)
ENUMS = (input_format, recognition_status, label_source)


def _now_column(name: str) -> sa.Column:
    """A timestamp column that defaults to now() on the server."""
    return sa.Column(
        name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def upgrade() -> None:
    bind = op.get_bind()
    for enum in ENUMS:
        enum.create(bind, checkfirst=False)

    op.create_table(
        "players",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("secret_hash", sa.String(128), nullable=True),
        _now_column("created_at"),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_players"),
    )

    op.create_table(
        "consents",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("player_id", sa.String(64), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("store", sa.Boolean(), nullable=False),
        sa.Column("train", sa.Boolean(), nullable=False),
        _now_column("granted_at"),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_consents"),
        sa.ForeignKeyConstraint(
            ["player_id"], ["players.id"], name="fk_consents_player_id_players", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_consents_player_id", "consents", ["player_id"])

    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("classes", postgresql.JSONB(), nullable=False),
        sa.Column("architecture", sa.String(64), nullable=False),
        sa.Column("artifact_key", sa.String(512), nullable=False),
        sa.Column("checksum", sa.String(64), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("metrics", postgresql.JSONB(), nullable=False),
        sa.Column("dataset_manifest", postgresql.JSONB(), nullable=False),
        sa.Column("source", sa.String(256), nullable=False),
        _now_column("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_model_versions"),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["model_versions.id"], name="fk_model_versions_parent_id_model_versions"
        ),
    )

    op.create_table(
        "model_aliases",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        _now_column("updated_at"),
        sa.Column("updated_by", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_model_aliases"),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            name="fk_model_aliases_model_version_id_model_versions",
        ),
    )

    op.create_table(
        "model_alias_history",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("alias", sa.String(32), nullable=False),
        sa.Column("from_version_id", sa.Integer(), nullable=True),
        sa.Column("to_version_id", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        _now_column("moved_at"),
        sa.PrimaryKeyConstraint("id", name="pk_model_alias_history"),
        sa.ForeignKeyConstraint(
            ["from_version_id"],
            ["model_versions.id"],
            name="fk_model_alias_history_from_version_id_model_versions",
        ),
        sa.ForeignKeyConstraint(
            ["to_version_id"],
            ["model_versions.id"],
            name="fk_model_alias_history_to_version_id_model_versions",
        ),
    )
    op.create_index("ix_model_alias_history_alias", "model_alias_history", ["alias"])

    op.create_table(
        "recognitions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("player_id", sa.String(64), nullable=True),
        sa.Column("consent_id", sa.BigInteger(), nullable=True),
        sa.Column("consent_store", sa.Boolean(), nullable=False),
        sa.Column("consent_train", sa.Boolean(), nullable=False),
        sa.Column("word", sa.String(64), nullable=True),
        sa.Column("client_key_id", sa.String(16), nullable=True),
        sa.Column("input_format", input_format, nullable=False),
        sa.Column("payload", postgresql.JSONB(), nullable=True),
        sa.Column("payload_png", sa.LargeBinary(), nullable=True),
        sa.Column("status", recognition_status, nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(64), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("top", postgresql.JSONB(), nullable=True),
        sa.Column("model_version_id", sa.Integer(), nullable=True),
        sa.Column("timings", postgresql.JSONB(), nullable=True),
        sa.Column("strokes_key", sa.String(512), nullable=True),
        sa.Column("png_key", sa.String(512), nullable=True),
        _now_column("created_at"),
        _now_column("enqueued_at"),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_recognitions"),
        sa.ForeignKeyConstraint(
            ["player_id"],
            ["players.id"],
            name="fk_recognitions_player_id_players",
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["consent_id"],
            ["consents.id"],
            name="fk_recognitions_consent_id_consents",
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            name="fk_recognitions_model_version_id_model_versions",
        ),
    )
    op.create_index("ix_recognitions_player_id", "recognitions", ["player_id"])
    op.create_index("ix_recognitions_consent_id", "recognitions", ["consent_id"])
    # The sweeper looks for old unfinished work.
    op.create_index("ix_recognitions_status_created_at", "recognitions", ["status", "created_at"])

    op.create_table(
        "labels",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("recognition_id", sa.Uuid(), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("source", label_source, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        _now_column("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_labels"),
        sa.ForeignKeyConstraint(
            ["recognition_id"],
            ["recognitions.id"],
            name="fk_labels_recognition_id_recognitions",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_labels_recognition_id", "labels", ["recognition_id"])

    op.create_table(
        "training_runs",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("parent_version_id", sa.Integer(), nullable=True),
        sa.Column("candidate_version_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("params", postgresql.JSONB(), nullable=False),
        sa.Column("report", postgresql.JSONB(), nullable=False),
        _now_column("started_at"),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_training_runs"),
        sa.ForeignKeyConstraint(
            ["parent_version_id"],
            ["model_versions.id"],
            name="fk_training_runs_parent_version_id_model_versions",
        ),
        sa.ForeignKeyConstraint(
            ["candidate_version_id"],
            ["model_versions.id"],
            name="fk_training_runs_candidate_version_id_model_versions",
        ),
    )

    op.create_table(
        "erasures",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("player_ref", sa.String(64), nullable=False),
        sa.Column("recognitions_deleted", sa.Integer(), nullable=False),
        sa.Column("objects_deleted", sa.Integer(), nullable=False),
        _now_column("requested_at"),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_erasures"),
    )

    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("details", postgresql.JSONB(), nullable=False),
        _now_column("at"),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )


def downgrade() -> None:
    # Dropping a table drops its indexes; children before parents.
    for table in (
        "audit_log",
        "erasures",
        "training_runs",
        "labels",
        "recognitions",
        "model_alias_history",
        "model_aliases",
        "model_versions",
        "consents",
        "players",
    ):
        op.drop_table(table)
    bind = op.get_bind()
    for enum in reversed(ENUMS):
        enum.drop(bind, checkfirst=False)
