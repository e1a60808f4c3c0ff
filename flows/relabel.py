"""Relabel: turn collected doodles into training labels, or into work for reviewers.

The prompt word is a weak label; what checks it depends on whether the production model
knows the word (`decide`, a pure function; thresholds are settings):

- a word it knows: its own probability for the prompt. It confirms the prompt
  (`DOODLE_RELABEL_ACCEPT_CONFIDENCE`), or it hardly sees the prompt at all
  (`DOODLE_RELABEL_DOUBT_PROBABILITY`: a scribble, a drawing of another word) and a
  reviewer looks;
- a word it cannot know: its softmax over the words it knows says nothing about the
  prompt, so the doodle is judged against the other drawings of the same prompt
  (ml.agreement): an outlier among them goes to review, and so does a drawing more like
  the known word the model sees in it than like the prompt's other drawings. A prompt
  with fewer than `DOODLE_RELABEL_MIN_GROUP` drawings waits for more.

Near-empty doodles and scribbles by ink (ml.quality) go to review whatever the prompt.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from core.settings import Settings
from db.datasets import Examples, replay_sample, split_examples
from db.labels import Candidate, is_word
from db.registry import Alias
from flows.context import flow_context
from ml.agreement import Agreement, agreements, conv_features, unit_rows, word_centres
from ml.network import QuickDrawNet
from ml.predict import Prediction, Predictor
from ml.quality import assess
from services import labels as labelling
from services import lineage

BATCH = 512
# Known words' drawings that fix the feature space's origin and each known word's centre.
REFERENCE_PER_WORD = 50


@dataclass(frozen=True)
class Decision:
    label: str | None = None  # accepted as a training label
    review: str | None = None  # why a reviewer should look instead


@dataclass(frozen=True)
class Evidence:
    """What relabel knows of one doodle besides its prompt and the model's answer."""

    quality: str | None = None  # ml.quality: near_empty, scribble
    prompt_probability: float | None = None  # the model's, for a prompt it knows
    agreement: Agreement | None = None  # for a prompt it does not know (None: group too small)
    looks_known: str | None = None  # a known word the doodle is more like than its group


def decide(
    word: str | None,
    prediction: Prediction,
    known_words: set[str],
    evidence: Evidence,
    settings: Settings,
) -> Decision:
    if evidence.quality is not None:
        return Decision(review=evidence.quality)
    if not word:
        return Decision()  # no prompt, no weak label: nothing to confirm
    if not is_word(word):  # e.g. "?" from a client: never a class (db.labels' word rule)
        return Decision(review=f"not_a_word: the prompt {word!r} is not a word")
    sees = f"sees {prediction.label!r} at {prediction.confidence:.0%}"
    if word in known_words:
        p_word = evidence.prompt_probability or 0.0
        if p_word < settings.relabel_doubt_probability:
            return Decision(review=f"model_disagrees: {sees}, {word!r} at {p_word:.0%}")
        if prediction.label == word and prediction.confidence >= settings.relabel_accept_confidence:
            return Decision(label=word)
        return Decision()  # the model is unsure: leave it for a later, better model
    if evidence.looks_known is not None:
        return Decision(
            review=f"looks_known: {sees}, more like {evidence.looks_known!r} than the other "
            f"drawings of {word!r}"
        )
    if evidence.agreement is None:
        return Decision()  # too few drawings of the word to judge by: wait for more
    if evidence.agreement.outlier:
        return Decision(review=f"unlike_prompt: {evidence.agreement.describe(word)}")
    return Decision(label=word)


class Judge:
    """Judges chunks of candidates (each word's candidates in one chunk) with one model.

    `references`: drawings of the known words, which place the feature space's origin and
    each known word's centre; `accepted`: the new words' drawings labelled before, which
    belong to their word's group."""

    def __init__(
        self,
        model: QuickDrawNet,
        classes: list[str],
        settings: Settings,
        references: Examples,
        accepted: Examples,
    ) -> None:
        self.model = model
        self.predictor = Predictor(model, classes)
        self.classes = list(classes)
        self.settings = settings
        self.accepted = accepted
        features = conv_features(model, references.bitmaps)
        self.origin: np.ndarray | None = features.mean(0) if len(references) else None
        self.centres = (
            word_centres(unit_rows(features, self.origin), references.labels)
            if self.origin is not None
            else {}
        )

    def __call__(self, chunk: Sequence[Candidate]) -> list[Decision]:
        settings = self.settings
        known = set(self.classes)
        bitmaps = np.stack([np.frombuffer(c.bitmap, np.uint8).reshape(28, 28) for c in chunk])
        probabilities = self.predictor.probabilities(bitmaps)
        predictions = self.predictor.predictions(probabilities)
        qualities = [
            assess(b, min_ink=settings.min_ink_fraction, max_ink=settings.max_ink_fraction)
            for b in bitmaps
        ]
        evidence = [
            Evidence(quality, prompt_probability=float(probs[self.classes.index(c.word)]))
            if c.word in known
            else Evidence(quality)
            for c, probs, quality in zip(chunk, probabilities, qualities, strict=True)
        ]
        fresh = [i for i, c in enumerate(chunk) if c.word and c.word not in known]
        if fresh:
            self._judge_new_words(chunk, bitmaps, predictions, fresh, evidence)
        return [
            decide(c.word, p, known, e, settings)
            for c, p, e in zip(chunk, predictions, evidence, strict=True)
        ]

    def _judge_new_words(
        self,
        chunk: Sequence[Candidate],
        bitmaps: np.ndarray,
        predictions: list[Prediction],
        fresh: list[int],
        evidence: list[Evidence],
    ) -> None:
        """Each doodle of a new word against its word's other drawings (in `evidence`)."""
        words = {chunk[i].word for i in fresh}
        before = self.accepted.take([j for j, w in enumerate(self.accepted.labels) if w in words])
        group_words = [chunk[i].word for i in fresh] + before.labels
        features = conv_features(self.model, np.concatenate([bitmaps[fresh], before.bitmaps]))
        # Without known words' drawings, uncentred: a lone word's own mean would be its centre.
        origin = self.origin if self.origin is not None else np.zeros(features.shape[1])
        directions = unit_rows(features, origin)
        sizes = Counter(group_words)
        judged = [
            k < len(fresh) and sizes[w] >= self.settings.relabel_min_group
            for k, w in enumerate(group_words)
        ]
        found = agreements(
            directions, group_words, judged=judged, fence=self.settings.relabel_outlier_fence
        )
        for k, i in enumerate(fresh):
            agreement, prediction = found[k], predictions[i]
            seen = self.centres.get(prediction.label)
            # The model's confident guess counts only where the drawing is also nearer that
            # word's drawings than its own prompt's: a new word's drawings all look like
            # something the model knows.
            looks_known = (
                prediction.label
                if agreement is not None
                and seen is not None
                and prediction.confidence >= self.settings.relabel_reject_confidence
                and float(directions[k] @ seen) > agreement.cosine
                else None
            )
            evidence[i] = Evidence(
                evidence[i].quality, agreement=agreement, looks_known=looks_known
            )


def _references(examples: Examples, known: set[str], seed: int) -> Examples:
    kept = examples.take([i for i, w in enumerate(examples.labels) if w in known])
    return replay_sample(kept, REFERENCE_PER_WORD, seed)


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def relabel_doodles(version_id: int, limit: int) -> dict[str, int]:
    """One transaction: a failed run leaves no half-labelled batch behind."""
    ctx = flow_context()
    settings = ctx.settings
    model, classes = ctx.load_version(version_id)
    with ctx.sessions() as s:
        split = split_examples(s, golden_fraction=settings.golden_fraction)
    labelled = Examples.concat([split.training, split.test])
    known = set(classes)
    judge = Judge(
        model,
        classes,
        settings,
        references=_references(labelled, known, settings.train_seed),
        accepted=labelled.take([i for i, w in enumerate(labelled.labels) if w not in known]),
    )
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
