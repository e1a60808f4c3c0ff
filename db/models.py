"""SQLAlchemy 2 models: the schema of record.

Migrations in `migrations/versions` are written by hand from these classes;
`tests/integration/test_migrations.py` checks that the two agree.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Postgres gets JSONB; other dialects (unused today) would get plain JSON.
Json = JSON().with_variant(JSONB(), "postgresql")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _now() -> Any:
    return func.now()


class RecognitionStatus(enum.StrEnum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"


class InputFormat(enum.StrEnum):
    simplified = "simplified"
    raw = "raw"
    png = "png"
    bitmap = "bitmap"  # a 28x28 bitmap as is (imports of the dataset's .npy files)


class RecognitionOrigin(enum.StrEnum):
    game = "game"  # sent by a game client
    import_ = "import"  # a drawing of a public dataset, imported for training


class ReviewStatus(enum.StrEnum):
    pending = "pending"
    resolved = "resolved"


class LabelSource(enum.StrEnum):
    prompt = "prompt"
    model = "model"
    reviewer = "reviewer"
    import_ = "import"


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(cls, name=name, values_callable=lambda e: [m.value for m in e])


def _checked_enum(cls: type[enum.Enum], name: str) -> Enum:
    """An enum kept as VARCHAR + CHECK (no Postgres type): adding a value later is a
    constraint swap instead of ALTER TYPE."""
    return Enum(
        cls,
        name=name,
        values_callable=lambda e: [m.value for m in e],
        native_enum=False,
        create_constraint=True,
        length=16,
    )


class Player(Base):
    """A pseudonymous player, identified by the id the game gives us."""

    __tablename__ = "players"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Hash of the secret the player uses for export / erase requests.
    secret_hash: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    erased_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    consents: Mapped[list[Consent]] = relationship(back_populates="player")

    __table_args__ = (
        # The few erased players, whose doodles lists must hide (db.doodle_listing).
        Index("ix_players_erased", "id", postgresql_where=text("erased_at IS NOT NULL")),
    )


class Consent(Base):
    """One grant of consent: which text version, which scopes, until when."""

    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    player_id: Mapped[str] = mapped_column(ForeignKey("players.id", ondelete="CASCADE"), index=True)
    version: Mapped[str] = mapped_column(String(32))
    store: Mapped[bool] = mapped_column(Boolean)
    train: Mapped[bool] = mapped_column(Boolean)
    granted_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    player: Mapped[Player] = relationship(back_populates="consents")


class ModelVersion(Base):
    """A trained network: its classes, where its weights are, where it came from."""

    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    classes: Mapped[list[str]] = mapped_column(Json)
    architecture: Mapped[str] = mapped_column(String(64), default="quickdraw-cnn-v1")
    artifact_key: Mapped[str] = mapped_column(String(512))
    checksum: Mapped[str] = mapped_column(String(64))  # sha256 hex of the artifact
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    metrics: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    dataset_manifest: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    source: Mapped[str] = mapped_column(String(256), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    # Set when doodles it was trained on were erased: it must leave service (issue 9).
    erased_data_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class ModelAlias(Base):
    """A movable name (`production`, `candidate`) pointing at one model version."""

    __tablename__ = "model_aliases"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    updated_by: Mapped[str] = mapped_column(String(128), default="")

    model_version: Mapped[ModelVersion] = relationship()


class ModelAliasHistory(Base):
    """Every move of an alias: who or what moved it, when, from which version to which."""

    __tablename__ = "model_alias_history"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    alias: Mapped[str] = mapped_column(String(32), index=True)
    from_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    to_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text, default="")
    moved_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


# db.doodle_listing.LISTABLE_SQL; the listing's filters that walk their own index.
_LISTABLE = text("origin = 'game' AND consent_store AND status = 'done'")
LISTING_INDEXES = [
    Index(
        f"ix_recognitions_listing{suffix}", *columns, "created_at", "id", postgresql_where=_LISTABLE
    )
    for suffix, columns in (
        ("", ()),
        ("_word", ("word",)),
        ("_label", ("label",)),
        ("_model", ("model_version_id",)),
        ("_player", ("player_id",)),
    )
]


class Recognition(Base):
    """One doodle sent by a game client, and what the model made of it."""

    __tablename__ = "recognitions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    # game: sent by a player; import: a drawing of a public dataset (`doodle data import`).
    # All training data is in this one table.
    origin: Mapped[RecognitionOrigin] = mapped_column(
        _checked_enum(RecognitionOrigin, "recognition_origin"),
        default=RecognitionOrigin.game,
        server_default=text("'game'"),
    )
    # Imports: where the drawing came from (`quickdraw:<key_id>`), so a second import of
    # the same file adds nothing.
    external_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    player_id: Mapped[str | None] = mapped_column(
        ForeignKey("players.id", ondelete="SET NULL"), index=True
    )
    # Indexed: erasing a player deletes its consents, which sets this to NULL here.
    consent_id: Mapped[int | None] = mapped_column(
        ForeignKey("consents.id", ondelete="SET NULL"), index=True
    )
    # Snapshot of the consent scopes in force when the doodle arrived.
    consent_store: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_train: Mapped[bool] = mapped_column(Boolean, default=False)
    word: Mapped[str | None] = mapped_column(String(64))
    client_key_id: Mapped[str | None] = mapped_column(String(16))
    input_format: Mapped[InputFormat] = mapped_column(_enum(InputFormat, "input_format"))
    # The doodle itself until the worker has handled it: strokes as JSON, or a PNG.
    # Cleared when done, or, with consent to store, once it is in object storage.
    payload: Mapped[Any | None] = mapped_column(Json)
    payload_png: Mapped[bytes | None] = mapped_column()
    status: Mapped[RecognitionStatus] = mapped_column(
        _enum(RecognitionStatus, "recognition_status"), default=RecognitionStatus.queued
    )
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    label: Mapped[str | None] = mapped_column(String(64))
    confidence: Mapped[float | None] = mapped_column(Float)
    top: Mapped[list[dict[str, Any]] | None] = mapped_column(Json)
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    timings: Mapped[dict[str, float] | None] = mapped_column(Json)
    # Where the doodle is kept (with consent to store): its strokes as JSON, or the PNG it
    # was sent as. Written after the answer; `stored_at` says when (None: not yet).
    strokes_key: Mapped[str | None] = mapped_column(String(512))
    png_key: Mapped[str | None] = mapped_column(String(512))
    stored_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # The 28x28 uint8 raster the model saw (784 bytes, row-major): kept only with consent
    # to store (it is derived from the doodle); imports always have it. Training reads it.
    bitmap: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    # Last time a message was sent for it: the sweeper re-enqueues only long-silent work.
    enqueued_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        # The sweeper looks for old unfinished work.
        Index("ix_recognitions_status_created_at", "status", "created_at"),
        # Relabelling and datasets select by origin and status.
        Index("ix_recognitions_origin_status", "origin", "status"),
        # The sweeper: queued or running doodles nobody finished.
        Index(
            "ix_recognitions_unfinished",
            "enqueued_at",
            postgresql_where=text("status IN ('queued', 'running')"),
        ),
        # Finished doodles whose object is still to be written (storage was down).
        Index(
            "ix_recognitions_store_pending",
            "finished_at",
            postgresql_where=text("status = 'done' AND consent_store AND stored_at IS NULL"),
        ),
        # The admin's grid of kept doodles (db.doodle_listing): newest first, alone or
        # after one equality filter; partial on the rows it can list.
        *LISTING_INDEXES,
    )


class Label(Base):
    """Provenance of every training label: which doodle, what label, from whom."""

    __tablename__ = "labels"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    recognition_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("recognitions.id", ondelete="CASCADE")
    )
    label: Mapped[str] = mapped_column(String(64))
    source: Mapped[LabelSource] = mapped_column(_enum(LabelSource, "label_source"))
    actor: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())

    __table_args__ = (
        # The labels of a doodle, by source (effective label, "already labelled?").
        Index("ix_labels_recognition_id_source", "recognition_id", "source"),
        # The admin's grid filtered by label or by source (db.doodle_listing).
        Index("ix_labels_label_source", "label", "source", "recognition_id"),
        Index("ix_labels_source", "source", "recognition_id"),
    )


class Review(Base):
    """A doodle waiting for an admin's eye (at most one review per doodle).

    Resolving it means adding a `reviewer` label; `reason` says why it was queued, e.g.
    "model_disagrees: sees 'cup' at 93%", "near_empty", "scribble".
    """

    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    recognition_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("recognitions.id", ondelete="CASCADE"), unique=True
    )
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[ReviewStatus] = mapped_column(
        _checked_enum(ReviewStatus, "review_status"),
        default=ReviewStatus.pending,
        server_default=text("'pending'"),
    )
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_by: Mapped[str | None] = mapped_column(String(128))

    __table_args__ = (
        # The admins' queue: pending reviews, oldest first.
        Index("ix_reviews_status_created_at", "status", "created_at"),
    )


class WordStatus(enum.StrEnum):
    proposed = "proposed"  # a reviewer's new word, waiting for an admin
    confirmed = "confirmed"  # an admin made it a word labels may use
    rejected = "rejected"  # an admin said it is not a word to learn


class Word(Base):
    """A word of the labels' vocabulary beside the ones already known (the production
    model's classes, the imported dataset's words): proposed by a reviewer, confirmed or
    rejected by an admin. Reviewer labels of a word proposed or rejected do not train
    (db.labels.trainable_word)."""

    __tablename__ = "words"

    word: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[WordStatus] = mapped_column(_checked_enum(WordStatus, "word_status"))
    proposed_by: Mapped[str | None] = mapped_column(String(128))
    proposed_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    decided_by: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        # The words waiting for an admin (GET /v1/admin/words?status=proposed).
        Index("ix_words_status_proposed_at", "status", "proposed_at"),
    )


class TrainingRun(Base):
    __tablename__ = "training_runs"
    __table_args__ = (
        # Never two cycles at once: one row at most is requested or running.
        Index(
            "uq_training_runs_one_active",
            text("(true)"),
            unique=True,
            postgresql_where=text("status IN ('requested', 'running')"),
        ),
        # "New labels since the last cycle started", recent cycles.
        Index("ix_training_runs_started_at", "started_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    parent_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    candidate_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    # requested -> running -> promoted | rejected | skipped | failed | abandoned
    status: Mapped[str] = mapped_column(String(16), default="running")
    params: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    report: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    # Who asked ("admin:<id>", "trigger", "schedule", "cli") and why.
    requested_by: Mapped[str] = mapped_column(String(128), server_default="")
    reason: Mapped[str] = mapped_column(Text, server_default="")
    requested_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=_now()
    )
    # When the flow took it (for a requested cycle: later than requested_at).
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    stage: Mapped[str | None] = mapped_column(String(32))


class ErasureStatus(enum.StrEnum):
    pending = "pending"
    done = "done"


class Erasure(Base):
    """A player's erasure: a request worked until done, then its receipt.

    The receipt keeps no personal data: `player_id` is held only while the request is
    pending; `player_ref` is a keyed hash of it (the same player, the same ref)."""

    __tablename__ = "erasures"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'done')", name="status"),
        # The workers' look for requests to work on.
        Index("ix_erasures_pending", "requested_at", postgresql_where=text("status = 'pending'")),
        # Is this player being erased? (lists hide their doodles at once)
        Index(
            "ix_erasures_pending_player",
            "player_id",
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    public_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, unique=True, server_default=text("gen_random_uuid()")
    )
    player_ref: Mapped[str] = mapped_column(String(64))
    player_id: Mapped[str | None] = mapped_column(String(64))  # None once done
    status: Mapped[str] = mapped_column(String(16), server_default=ErasureStatus.pending.value)
    requested_by: Mapped[str] = mapped_column(String(128), server_default="")
    deleted: Mapped[dict[str, int]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    # Versions trained on the player's doodles, and the one that replaced them in service.
    model_versions: Mapped[list[int]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    replaced_by_version: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    requested_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=_now()
    )
    completed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class ModelVersionExample(Base):
    """A recognition a model version was trained on (its lineage, for erasures)."""

    __tablename__ = "model_version_examples"

    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    )
    recognition_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("recognitions.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class AuditLog(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(128), default="")
    details: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_now())


class IdempotencyKey(Base):
    """A client's Idempotency-Key and what its first request made (a recognition or a
    player): a retry with the same key answers for that instead of recording again.

    Written in the same statement as the row it names (db.recognitions, db.players), so
    no crash leaves one without the other; it goes with that row (erasure, retention) and
    once older than DOODLE_IDEMPOTENCY_TTL_HOURS (flows.retention prunes it)."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        CheckConstraint("(recognition_id IS NULL) <> (player_id IS NULL)", name="one_target"),
    )

    # Keys are scoped per client key (its id, api.auth.key_id).
    client_key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    # sha256 of the request (operation, content type, query, body): a reuse with another
    # request is refused.
    fingerprint: Mapped[str] = mapped_column(String(64))
    recognition_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("recognitions.id", ondelete="CASCADE"), index=True
    )
    player_id: Mapped[str | None] = mapped_column(
        ForeignKey("players.id", ondelete="CASCADE"), index=True
    )
    # A new player's secret is derived from this and the server's key, so a retry can hand
    # the same secret back without it being stored (db.players.derived_secret).
    nonce: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=_now(), index=True
    )
