"""db.doodle_listing on real Postgres: what the admin's grid shows, its filters, its pages.

Doodles are written as rows (finished, as a worker leaves them): the listing reads rows,
and a worker would only make this slower, not truer.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import update

from db import doodle_listing, labels, reviews
from db.doodle_listing import DoodleFilters, InvalidCursor, ReviewState, list_doodles
from db.models import (
    Consent,
    Erasure,
    InputFormat,
    LabelSource,
    ModelVersion,
    Player,
    Recognition,
    RecognitionOrigin,
    RecognitionStatus,
)

T0 = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
BITMAP = bytes(784)


def add_doodle(
    s,
    *,
    at: dt.datetime,
    player: str | None = "p1",
    word: str | None = "cat",
    predicted: str | None = "cat",
    confidence: float = 0.9,
    store: bool = True,
    train: bool = True,
    status: RecognitionStatus = RecognitionStatus.done,
    origin: RecognitionOrigin = RecognitionOrigin.game,
    model: int | None = None,
) -> uuid.UUID:
    """One recognition row as a worker leaves it (and its player with a consent)."""
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
    s.add(
        Recognition(
            id=rid,
            origin=origin,
            player_id=player,
            consent_id=consent_id,
            consent_store=store,
            consent_train=train,
            word=word,
            input_format=InputFormat.simplified,
            status=status,
            label=predicted,
            confidence=confidence,
            model_version_id=model,
            bitmap=BITMAP,
            created_at=at,
        )
    )
    s.flush()
    return rid


EVERYTHING = DoodleFilters()


def _ids(s, filters: DoodleFilters = EVERYTHING, **kw) -> list[uuid.UUID]:
    return [item.id for item in list_doodles(s, filters, **kw).items]


def _version(s) -> int:
    v = ModelVersion(classes=["cat"], artifact_key="k", checksum="0" * 64)
    s.add(v)
    s.flush()
    return v.id


def test_lists_kept_finished_game_doodles_newest_first(db_session_factory):
    with db_session_factory.begin() as s:
        old = add_doodle(s, at=T0)
        new = add_doodle(s, at=T0 + dt.timedelta(minutes=1), confidence=0.25)
        add_doodle(s, at=T0, store=False, train=False)  # not kept
        add_doodle(s, at=T0, status=RecognitionStatus.queued)  # not recognised yet
        add_doodle(s, at=T0, status=RecognitionStatus.failed)
        add_doodle(s, at=T0, player=None, origin=RecognitionOrigin.import_)  # not collected
    with db_session_factory() as s:
        page = list_doodles(s, DoodleFilters(), limit=10)
    assert [i.id for i in page.items] == [new, old]
    assert page.next_cursor is None
    first = page.items[0]
    assert (first.word, first.predicted, first.confidence) == ("cat", "cat", 0.25)
    assert (first.label, first.label_source, first.review_status) == (None, None, ReviewState.none)
    assert first.player_id == "p1" and first.created_at == T0 + dt.timedelta(minutes=1)


def test_doodles_of_a_player_being_erased_or_erased_vanish(db_session_factory):
    with db_session_factory.begin() as s:
        kept = add_doodle(s, at=T0, player="stays")
        add_doodle(s, at=T0, player="pending")
        add_doodle(s, at=T0, player="erased")
        s.add(Erasure(player_ref="ref", player_id="pending"))
        s.execute(update(Player).where(Player.id == "erased").values(erased_at=T0))
    with db_session_factory() as s:
        assert _ids(s) == [kept]
        assert doodle_listing.listed_ids(s, [kept]) == {kept}


def test_each_filter_selects_only_its_doodles(db_session_factory):
    with db_session_factory.begin() as s:
        version = _version(s)
        base = add_doodle(s, at=T0)
        by_word = add_doodle(s, at=T0 + dt.timedelta(seconds=1), word="dog")
        by_prediction = add_doodle(s, at=T0 + dt.timedelta(seconds=2), predicted="cup")
        unsure = add_doodle(s, at=T0 + dt.timedelta(seconds=3), confidence=0.1)
        late = add_doodle(s, at=T0 + dt.timedelta(days=3))
        by_model = add_doodle(s, at=T0 + dt.timedelta(seconds=4), model=version)
        by_player = add_doodle(s, at=T0 + dt.timedelta(seconds=5), player="p2")
        relabelled = add_doodle(s, at=T0 + dt.timedelta(seconds=6))
        labels.add_label(s, relabelled, "cat", LabelSource.prompt, "flow:relabel")
        reviewed = add_doodle(s, at=T0 + dt.timedelta(seconds=7))
        labels.add_label(s, reviewed, "cat", LabelSource.prompt, "flow:relabel")
        reviews.review_doodle(s, reviewed, "hat", actor="reviewer:x")
        queued = add_doodle(s, at=T0 + dt.timedelta(seconds=8))
        reviews.queue_review(s, queued, "scribble")
        discarded = add_doodle(s, at=T0 + dt.timedelta(seconds=9))
        labels.add_label(s, discarded, "cat", LabelSource.prompt, "flow:relabel")
        reviews.discard_doodle(s, discarded, actor="reviewer:x")
    everyone = {base, by_word, by_prediction, unsure, late, by_model, by_player}
    everyone |= {relabelled, reviewed, queued, discarded}
    cases = [
        (DoodleFilters(word="dog"), {by_word}),
        (DoodleFilters(predicted="cup"), {by_prediction}),
        (DoodleFilters(max_confidence=0.5), {unsure}),
        (DoodleFilters(min_confidence=0.5), everyone - {unsure}),
        (DoodleFilters(since=T0 + dt.timedelta(days=1)), {late}),
        (DoodleFilters(until=T0 + dt.timedelta(seconds=1)), {base}),
        (DoodleFilters(model_version=version), {by_model}),
        (DoodleFilters(player_id="p2"), {by_player}),
        (DoodleFilters(label="hat"), {reviewed}),
        (DoodleFilters(label="cat"), {relabelled}),  # the discard dropped the prompt label
        (DoodleFilters(label_source=LabelSource.reviewer), {reviewed}),
        (DoodleFilters(label_source=LabelSource.prompt), {relabelled}),
        (DoodleFilters(label="hat", label_source=LabelSource.prompt), set()),
        (DoodleFilters(review=ReviewState.pending), {queued}),
        (DoodleFilters(review=ReviewState.resolved), {reviewed, discarded}),
        (DoodleFilters(review=ReviewState.none), everyone - {reviewed, queued, discarded}),
        (
            DoodleFilters(label_source=doodle_listing.NO_LABEL),
            everyone - {relabelled, reviewed},
        ),
        (DoodleFilters(word="cat", predicted="cat", player_id="p1", max_confidence=0.5), {unsure}),
    ]
    with db_session_factory() as s:
        assert set(_ids(s, limit=50)) == everyone
        for filters, expected in cases:
            assert set(_ids(s, filters, limit=50)) == expected, filters
        item = next(i for i in list_doodles(s, DoodleFilters(label="hat")).items)
        assert (item.label, item.label_source, item.review_status) == (
            "hat",
            LabelSource.reviewer,
            ReviewState.resolved,
        )


def test_pages_neither_repeat_nor_skip_while_doodles_arrive(db_session_factory):
    """Keyset pages: new doodles (later, and at the same instant as listed ones) land
    before the first page; the pages after it go on where they stopped."""
    with db_session_factory.begin() as s:
        # Pairs share a timestamp: the id breaks the tie.
        existing = [add_doodle(s, at=T0 + dt.timedelta(seconds=n // 2)) for n in range(23)]
    seen: list[uuid.UUID] = []
    after = None
    pages = 0
    while True:
        with db_session_factory() as s:
            page = list_doodles(s, DoodleFilters(word="cat"), after=after, limit=5)
        seen += [i.id for i in page.items]
        pages += 1
        with db_session_factory.begin() as s:  # arrivals between page reads
            add_doodle(s, at=T0 + dt.timedelta(hours=1, seconds=pages))
        if page.next_cursor is None:
            break
        after = page.next_cursor
    assert pages == 5
    assert len(seen) == len(set(seen)) == 23
    with db_session_factory() as s:
        order = {
            rid: (r.created_at, r.id)
            for rid in existing
            if (r := s.get(Recognition, rid)) is not None
        }
    assert seen == sorted(existing, key=lambda rid: order[rid], reverse=True)


@pytest.mark.parametrize(
    "cursor", ["nope", "bm90IGpzb24", "WyIyMDI2LTExLTAxIiwgIngiXQ", "WzEsIDJd", ""]
)
def test_a_cursor_it_did_not_make_is_refused(db_session_factory, cursor):
    with db_session_factory() as s, pytest.raises(InvalidCursor):
        list_doodles(s, DoodleFilters(), after=cursor or "=", limit=5)


def test_limit_out_of_range_is_refused(db_session_factory):
    with db_session_factory() as s:
        for limit in (0, doodle_listing.MAX_LIMIT + 1):
            with pytest.raises(ValueError, match="limit"):
                list_doodles(s, DoodleFilters(), limit=limit)
