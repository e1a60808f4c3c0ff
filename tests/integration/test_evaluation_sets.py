"""Test drawings beyond the golden split (db.evaluation_sets): imported and reviewed drawings
no scored version nor any ancestor was trained on. Against real Postgres."""

from __future__ import annotations

import uuid

from core.settings import Settings
from db import labels
from db.datasets import GOLDEN_SOURCES, drawing_identity, evaluation_examples, is_golden
from db.evaluation_sets import lineage, never_trained_examples, with_never_trained
from db.models import LabelSource, Recognition
from flows.evaluate import score_on_test_set
from ml.network import seed_classes, seed_weights_path
from services.connections import Connections
from services.models import add_version
from tests.integration.test_labels import game_doodle, imported_drawing

FRACTION = 0.2


def _version(settings: Settings, parent: int | None, trained_on: list[uuid.UUID]) -> int:
    """A version with the seed's weights and classes, trained (it says) on `trained_on`."""
    c = Connections(settings)
    try:
        version_id, _ = add_version(
            c.sessions,
            c.storage,
            seed_weights_path().read_bytes(),
            classes=seed_classes(),
            source="test",
            actor="test:evaluation-sets",
            reason="test",
            parent_id=parent,
            trained_on=trained_on,
        )
    finally:
        c.close()
    return version_id


def _not_golden(s, rid: uuid.UUID) -> bool:
    row = s.get(Recognition, rid)
    return not is_golden(drawing_identity(row.bitmap), row.word, FRACTION)


def test_drawings_no_version_of_the_lineage_trained_on_are_test_drawings(
    settings, db_session_factory, seed_version
):
    with db_session_factory.begin() as s:
        apples = [imported_drawing(s, "apple", n) for n in range(40)]
        stars = [imported_drawing(s, "star", 100 + n) for n in range(10)]
        kites = [imported_drawing(s, "kite", 200 + n) for n in range(5)]  # no old word
        # A reviewer's label counts, a prompt label relabel accepted does not.
        reviewed = game_doodle(s, player="r", word="star")
        labels.add_label(s, reviewed, "star", LabelSource.reviewer, "admin")
        prompted = game_doodle(s, player="q", word="star")
        labels.add_label(s, prompted, "star", LabelSource.prompt, "flow:relabel")
        # A twin (the same bitmap, another row) of a drawing the parent trained on.
        twin = uuid.uuid4()
        s.add(
            Recognition(
                **{
                    c: getattr(s.get(Recognition, apples[1]), c)
                    for c in ("origin", "word", "input_format", "status", "attempts", "bitmap")
                },
                id=twin,
                external_id="test:apple:twin",
            )
        )
        s.flush()
        labels.add_label(s, twin, "apple", LabelSource.import_, "test")
    parent = _version(settings, seed_version, apples[:10])
    child = _version(settings, parent, apples[10:20])
    sibling = _version(settings, seed_version, apples[20:30])

    with db_session_factory() as s:
        assert lineage(s, [child]) == {child, parent, seed_version}
        unseen = never_trained_examples(
            s, version_ids=[child, seed_version], words={"apple", "star"}
        )
        for_sibling = never_trained_examples(s, version_ids=[sibling], words={"apple"})
    expected = set(apples[20:]) | set(stars) | {reviewed}
    assert set(unseen.ids) == expected
    assert set(unseen.sources) <= {source.value for source in GOLDEN_SOURCES}
    assert not set(unseen.ids) & (set(kites) | {prompted, twin})  # twin: its drawing trained
    # The sibling's lineage trained on other apples: the parent's and child's are unseen.
    assert set(for_sibling.ids) == set(apples[:20] + apples[30:]) | {twin}


def test_both_versions_are_scored_on_the_golden_and_never_trained_drawings_alike(
    flow_context, settings, db_session_factory, seed_version
):
    with db_session_factory.begin() as s:
        apples = [imported_drawing(s, "apple", n) for n in range(60)]
        trained = [rid for rid in apples if _not_golden(s, rid)][:20]
    candidate = _version(settings, seed_version, trained)

    scored = score_on_test_set.fn([candidate, seed_version])

    with db_session_factory() as s:
        golden = evaluation_examples(s, golden_fraction=FRACTION)
        never = never_trained_examples(s, version_ids=[candidate], words={"apple"})
    test, fresh = with_never_trained(golden, never)
    assert len(scored.words) == len(apples) - len(trained) == len(test)
    assert scored.never_trained == sum(fresh) == len(apples) - len(trained) - len(golden)
    assert sum(scored.golden) == len(golden) and scored.provisional == 0
    assert scored.test_sets() == {
        "apple": {"golden": len(golden), "provisional": 0, "untrained": sum(fresh)}
    }
    # The same drawings for both: the same weights make the same hits, drawing for drawing.
    assert scored.hits[candidate] == scored.hits[seed_version]
    manifest = scored.reports[candidate]["test_manifest"]
    assert manifest == scored.reports[seed_version]["test_manifest"]
    assert manifest["count"] == len(test) and manifest["never_trained"] == sum(fresh)
