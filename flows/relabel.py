"""Relabel: turn collected doodles into training labels, or into work for reviewers.

The prompt word is a weak label. The production model's opinion decides what happens
to it (`decide`, a pure function); thresholds are settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from core.settings import Settings
from db.labels import Candidate
from db.registry import Alias
from flows.context import flow_context
from ml.predict import Prediction, Predictor
from ml.quality import assess
from services import labels as labelling
from services import lineage

BATCH = 512


@dataclass(frozen=True)
class Decision:
    label: str | None = None  # accepted as a training label
    review: str | None = None  # why a reviewer should look instead


def decide(
    word: str | None,
    prediction: Prediction,
    known_words: set[str],
    quality: str | None,
    settings: Settings,
) -> Decision:
    if quality is not None:
        return Decision(review=quality)
    if not word:
        return Decision()  # no prompt, no weak label: nothing to confirm
    sees_other = (
        prediction.label != word and prediction.confidence >= settings.relabel_reject_confidence
    )
    if sees_other:
        return Decision(
            review=f"model_disagrees: sees {prediction.label!r} at {prediction.confidence:.0%}"
        )
    if word not in known_words:
        # A word the model cannot know yet: the player's prompt is the best label we have.
        return Decision(label=word)
    if prediction.label == word and prediction.confidence >= settings.relabel_accept_confidence:
        return Decision(label=word)
    return Decision()  # the model is unsure: leave it for a later, better model


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def relabel_doodles(version_id: int, limit: int) -> dict[str, int]:
    """One transaction: a failed run leaves no half-labelled batch behind."""
    ctx = flow_context()
    settings = ctx.settings
    model, classes = ctx.load_version(version_id)
    predictor = Predictor(model, classes)
    known = set(classes)

    def judge(chunk: Sequence[Candidate]) -> list[Decision]:
        bitmaps = np.stack([np.frombuffer(c.bitmap, dtype=np.uint8).reshape(28, 28) for c in chunk])
        return [
            decide(
                candidate.word,
                prediction,
                known,
                assess(
                    bitmap, min_ink=settings.min_ink_fraction, max_ink=settings.max_ink_fraction
                ),
                settings,
            )
            for candidate, bitmap, prediction in zip(
                chunk, bitmaps, predictor.predict(bitmaps), strict=True
            )
        ]

    return labelling.relabel(
        ctx.sessions, judge, actor=f"flow:relabel (model v{version_id})", limit=limit, batch=BATCH
    )


@flow(name="relabel", log_prints=True)
def relabel(max_doodles: int = 1_000_000) -> dict[str, int]:
    """Label the doodles collected since the last run (only those with consent to train)."""
    ctx = flow_context()
    production_id = ctx.alias_version(Alias.PRODUCTION)
    if production_id is None:
        raise RuntimeError("no production model to relabel with")
    # A model trained on erased doodles labels nothing more: its clean ancestor does.
    version_id = lineage.clean_start(ctx.sessions, production_id).base_id
    counts = relabel_doodles(version_id, max_doodles)
    get_run_logger().info("relabel: %s", counts)
    return counts
