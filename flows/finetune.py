"""Fine-tune: a candidate model from production's weights, the accepted labels and a
replay sample of the old words' data (so they are not forgotten).

When production was trained on erased doodles (itself or through a parent), the
candidate starts from its nearest clean ancestor instead (services.lineage). The new
version records the recognitions it was trained on (its lineage).
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field

import torch
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from db import registry
from db.datasets import Examples, replay_sample, split_examples
from db.registry import Alias
from flows.context import flow_context
from ml.train import fine_tune, train_config
from services import lineage
from services.models import add_version


@dataclass
class Candidate:
    version_id: int | None
    parent_id: int
    new_words: list[str] = field(default_factory=list)
    examples: int = 0
    skipped: str | None = None
    # The new words' provisional test drawings it was not trained on (a refit trains on them).
    held_back: int = 0


def select_training_set(
    examples: Examples,
    parent_classes: list[str],
    min_examples: int,
    replay_per_word: int,
    seed: int,
    held_out: Counter[str] | None = None,
    leave_out: Collection[str] = (),
) -> tuple[Examples, list[str]]:
    """Old words: a per-word replay sample. New words: all, once they have enough, but
    those in `leave_out`.

    `held_out` counts each word's provisional test drawings (db.datasets): they count
    towards a new word's minimum though training never sees them."""
    counts = Counter(examples.labels) + (held_out or Counter())
    known = set(parent_classes)
    new_words = sorted(
        w for w, n in counts.items() if w not in known and w not in leave_out and n >= min_examples
    )
    old = examples.take([i for i, w in enumerate(examples.labels) if w in known])
    fresh = examples.take([i for i, w in enumerate(examples.labels) if w in new_words])
    return Examples.concat([replay_sample(old, replay_per_word, seed), fresh]), new_words


def _state_dict_bytes(model: torch.nn.Module) -> bytes:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getvalue()


@task(cache_policy=NO_CACHE)
def train_candidate(
    parent_id: int, refit_of: int | None = None, leave_out: list[str] | None = None
) -> Candidate:
    """A candidate from `parent_id`; with `refit_of`, one trained on the new words'
    provisional test drawings too; without the new words in `leave_out` (see `finetune`)."""
    ctx = flow_context()
    settings = ctx.settings
    log = get_run_logger()
    parent, parent_classes = ctx.load_version(parent_id)
    with ctx.sessions() as s:
        split = split_examples(s, golden_fraction=settings.golden_fraction)
        parent_manifest = registry.get_version(s, parent_id).dataset_manifest  # type: ignore[union-attr]
    held_out = split.provisional_counts()
    examples = split.training
    if refit_of is not None:
        examples, held_out = Examples.concat([split.training, split.provisional()]), Counter()
    train_set, new_words = select_training_set(
        examples,
        parent_classes,
        settings.new_word_min_examples,
        settings.replay_per_word,
        settings.train_seed,
        held_out=held_out,
        leave_out=leave_out or (),
    )
    manifest = train_set.manifest()
    if not len(train_set.labels):
        return Candidate(None, parent_id, skipped="no training data")
    if parent_manifest.get("ids_sha256") == manifest["ids_sha256"]:
        return Candidate(None, parent_id, skipped="no new data since the parent was trained")
    log.info(
        "fine-tuning v%s on %d drawings (%d words, new: %s)",
        parent_id,
        len(train_set.labels),
        len(set(train_set.labels)),
        new_words or "none",
    )
    config = train_config(settings)
    result = fine_tune(
        parent,
        parent_classes,
        train_set.bitmaps,
        train_set.labels,
        config,
        progress=lambda p: log.info("epoch %(epoch)s: loss %(loss).4f, accuracy %(accuracy).3f", p),
        pause=ctx.training_throttle.step if ctx.training_throttle else None,
    )
    if ctx.training_throttle and ctx.training_throttle.slept:
        log.info("training stepped aside for serving %.1f s", ctx.training_throttle.slept)
    version_id, _ = add_version(
        ctx.sessions,
        ctx.storage,
        _state_dict_bytes(result.model),
        classes=result.classes,
        source=f"flow:finetune from v{parent_id}",
        actor="flow:finetune",
        reason="fine-tuned"
        if refit_of is None
        else f"refit of v{refit_of} on its new words' test drawings too",
        alias=Alias.CANDIDATE,
        parent_id=parent_id,
        metrics={"training": result.history[-1] if result.history else {}},
        dataset_manifest=manifest,
        trained_on=train_set.ids,
    )
    held_back = sum(n for w, n in held_out.items() if w in new_words)
    return Candidate(version_id, parent_id, new_words, len(train_set.labels), held_back=held_back)


@flow(name="finetune", log_prints=True)
def finetune(
    parent_id: int | None = None,
    refit_of: int | None = None,
    leave_out: list[str] | None = None,
) -> Candidate:
    """Fine-tune `parent_id` (by default production, or its nearest ancestor not trained
    on erased doodles) into a `candidate` version.

    `refit_of`: the candidate the gate passed; the refit is trained the same way on every
    drawing, the new words' provisional test drawings included (their figures come from
    the candidate that did not see them: an estimate of the same training on fewer).
    `leave_out`: new words not to learn this time (the gate found them not learnt)."""
    if parent_id is None:
        ctx = flow_context()
        production_id = ctx.alias_version(Alias.PRODUCTION)
        if production_id is None:
            raise RuntimeError("no production model to start from")
        parent_id = lineage.clean_start(ctx.sessions, production_id).base_id
    return train_candidate(parent_id, refit_of, leave_out)
