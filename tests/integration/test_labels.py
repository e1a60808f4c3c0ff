"""Labels, their precedence and who may be trained on, against real Postgres."""

from __future__ import annotations

import datetime as dt
import uuid

import numpy as np
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from db import labels, reviews
from db.models import (
    Consent,
    InputFormat,
    LabelSource,
    Player,
    Recognition,
    RecognitionOrigin,
    RecognitionStatus,
    Review,
    ReviewStatus,
)


def bitmap_bytes(seed: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, (28, 28), dtype=np.uint8).tobytes()


def game_doodle(
    s: Session,
    *,
    word: str | None = "cup",
    player: str | None = "p1",
    store: bool = True,
    train: bool = True,
    status: RecognitionStatus = RecognitionStatus.done,
    bitmap: bool = True,
    created_at: dt.datetime | None = None,
) -> uuid.UUID:
    """A finished game doodle whose player (if any) gave this consent (one row per grant)."""
    consent_id = None
    if player is not None:
        if s.get(Player, player) is None:
            s.add(Player(id=player))
            s.flush()
        consent = Consent(player_id=player, version="2026-11", store=store, train=train)
        s.add(consent)
        s.flush()
        consent_id = consent.id
    rid = uuid.uuid4()
    # The golden split hashes the bitmap: number the drawings by the rows before them, not
    # by the random id, so which doodles are golden is the same on every run.
    drawing = int(s.scalar(select(func.count()).select_from(Recognition)) or 0)
    s.add(
        Recognition(
            id=rid,
            origin=RecognitionOrigin.game,
            player_id=player,
            consent_id=consent_id,
            consent_store=player is not None and store,
            consent_train=player is not None and train,
            word=word,
            input_format=InputFormat.simplified,
            status=status,
            attempts=1,
            bitmap=bitmap_bytes(drawing % 1000) if bitmap else None,
            **({"created_at": created_at} if created_at else {}),
        )
    )
    s.flush()
    return rid


def imported_drawing(s: Session, word: str, n: int) -> uuid.UUID:
    rid = uuid.uuid5(uuid.NAMESPACE_URL, f"test:{word}:{n}")
    s.add(
        Recognition(
            id=rid,
            origin=RecognitionOrigin.import_,
            external_id=f"test:{word}:{n}",
            word=word,
            input_format=InputFormat.bitmap,
            status=RecognitionStatus.done,
            attempts=0,
            bitmap=bitmap_bytes(n),
        )
    )
    s.flush()
    labels.add_label(s, rid, word, LabelSource.import_, actor="test")
    return rid


def test_relabel_candidates_only_trainable_undecided_doodles(db_session_factory):
    t0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    with db_session_factory.begin() as s:
        ok = game_doodle(s, player="ok", created_at=t0)
        ok_later = game_doodle(s, player="ok", word="hat", created_at=t0 + dt.timedelta(1))
        withdrawn = game_doodle(s, player="withdrawn")
        erased = game_doodle(s, player="erased")
        store_only = game_doodle(s, player="store-only", train=False)
        consent_gone = game_doodle(s, player="gone")
        excluded = {
            "withdrawn": withdrawn,
            "erased": erased,
            "store only": store_only,
            "consent deleted": consent_gone,
            "anonymous": game_doodle(s, player=None),
            "no bitmap": game_doodle(s, player="ok", bitmap=False),
            "no word": game_doodle(s, player="ok", word=None),
            "not done": game_doodle(s, player="ok", status=RecognitionStatus.running),
            "failed": game_doodle(s, player="ok", status=RecognitionStatus.failed),
            "prompt label": game_doodle(s, player="ok"),
            "model label": game_doodle(s, player="ok"),
            "reviewer label": game_doodle(s, player="ok"),
            "pending review": game_doodle(s, player="ok"),
            "import": imported_drawing(s, "cup", 1),
        }
        labels.add_label(s, excluded["prompt label"], "cup", LabelSource.prompt, "flow")
        labels.add_label(s, excluded["model label"], "hat", LabelSource.model, "flow")
        labels.add_label(s, excluded["reviewer label"], "cup", LabelSource.reviewer, "admin")
        assert reviews.queue_review(s, excluded["pending review"], "scribble")
        s.execute(update(Consent).where(Consent.player_id == "withdrawn").values(withdrawn_at=t0))
        s.execute(update(Player).where(Player.id == "erased").values(erased_at=t0))
        # Erasure deletes the consents: the doodle keeps its snapshot but no consent row.
        s.execute(delete(Consent).where(Consent.player_id == "gone"))

    with db_session_factory() as s:
        found = labels.relabel_candidates(s)
        assert [c.id for c in found] == [ok, ok_later], {
            name for name, rid in excluded.items() if rid in {c.id for c in found}
        }
        assert [c.word for c in found] == ["cup", "hat"]
        first = s.get(Recognition, ok)
        assert found[0].bitmap == first.bitmap and len(found[0].bitmap) == 784
        assert [c.id for c in labels.relabel_candidates(s, limit=1)] == [ok]

    # Incremental: once labelled (or queued for review) a doodle is not a candidate again.
    with db_session_factory.begin() as s:
        labels.add_label(s, ok, "cup", LabelSource.prompt, "flow:relabel")
        reviews.queue_review(s, ok_later, "model_disagrees: sees 'cup' at 93%")
    with db_session_factory() as s:
        assert labels.relabel_candidates(s) == []


def test_a_resolved_review_without_a_label_is_not_pending(db_session_factory):
    with db_session_factory.begin() as s:
        rid = game_doodle(s)
        reviews.queue_review(s, rid, "near_empty")
        s.execute(update(Review).values(status=ReviewStatus.resolved))
    with db_session_factory() as s:
        assert [c.id for c in labels.relabel_candidates(s)] == [rid]


def test_reviewer_label_wins_and_latest_wins_within_a_tier(db_session_factory):
    with db_session_factory.begin() as s:
        reviewed = game_doodle(s)
        automatic = game_doodle(s)
        imported = imported_drawing(s, "hat", 1)
        unlabelled = game_doodle(s)
    # Separate transactions: created_at (now()) differs, as in real use.
    steps = [
        (reviewed, "cup", LabelSource.prompt),
        (reviewed, "hat", LabelSource.reviewer),
        (reviewed, "tree", LabelSource.model),  # later, but automatic: loses
        (automatic, "cup", LabelSource.prompt),
        (automatic, "hat", LabelSource.model),  # same tier, later: wins
        (imported, "cup", LabelSource.model),  # the dataset's word stays
    ]
    for rid, label, source in steps:
        with db_session_factory.begin() as s:
            labels.add_label(s, rid, label, source, actor="test")
    with db_session_factory.begin() as s:
        # Two reviewer labels in one transaction (same timestamp): the later row wins.
        labels.add_label(s, reviewed, "star", LabelSource.reviewer, "admin:a")
        labels.add_label(s, reviewed, "cloud", LabelSource.reviewer, "admin:b")
    with db_session_factory() as s:
        eff = labels.effective_labels(s)
        assert eff == {
            reviewed: labels.EffectiveLabel("cloud", LabelSource.reviewer),
            automatic: labels.EffectiveLabel("hat", LabelSource.model),
            imported: labels.EffectiveLabel("hat", LabelSource.import_),
        }
        assert labels.effective_labels(s, [automatic, unlabelled]) == {automatic: eff[automatic]}
        assert labels.effective_labels(s, []) == {}


def test_add_labels_records_provenance(db_session_factory):
    from db.models import Label

    with db_session_factory.begin() as s:
        a, b = game_doodle(s), game_doodle(s)
        assert labels.add_labels(s, [(a, "cup"), (b, "hat")], LabelSource.prompt, "flow") == 2
        assert labels.add_labels(s, [], LabelSource.prompt, "flow") == 0
    with db_session_factory() as s:
        rows = s.query(Label).order_by(Label.id).all()
        assert [(r.recognition_id, r.label, r.source, r.actor) for r in rows] == [
            (a, "cup", LabelSource.prompt, "flow"),
            (b, "hat", LabelSource.prompt, "flow"),
        ]
        assert all(r.created_at is not None for r in rows)
