"""Evaluate a candidate against production on the same test drawings, and gate the promotion.

The test drawings are the golden set plus the provisional test sets of words no reviewer
has confirmed yet (db.datasets), plus the imported and reviewed drawings of the words
every scored version knows that none of them, nor any ancestor, was trained on
(db.evaluation_sets). Both versions predict every drawing, the same list in the same
order; the gate (ml.gate) compares them drawing by drawing.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from core.settings import Settings
from core.storage.base import StorageError
from db.datasets import GOLDEN_SOURCES, evaluation_examples
from db.evaluation_sets import never_trained_examples, with_never_trained
from db.models import LabelSource
from flows.context import flow_context
from ml.confusion import confusion_matrix, render_confusion_png
from ml.evaluate import score
from ml.gate import GateDecision, GatePolicy, PairedScores, decide, percent
from ml.predict import Predictor
from services import registry
from services.registry import add_metrics

# The report embeds the candidate's confusion matrix as a data: URI up to this size, so
# the Prefect UI shows it without access to object storage; above it, only the link.
EMBED_MAX_BYTES = 400_000


@dataclass(frozen=True)
class Scored:
    """What each version did on the test drawings (the same drawings, in the same order)."""

    words: list[str]
    golden: list[bool]  # per drawing: golden (reviewer, import) or else provisional (prompt)
    reports: dict[int, dict[str, Any]]  # ml.evaluate.score() + confusion_png + test_manifest
    hits: dict[int, list[bool]]  # per version, per drawing: top guess right?
    classes: dict[int, list[str]]
    # Per drawing: never trained on (reviewer, import; outside the golden split, no scored
    # version nor ancestor trained on it). Neither golden nor provisional.
    untrained: list[bool] = field(default_factory=list)

    def paired(self, candidate_id: int, production_id: int) -> PairedScores:
        return PairedScores(self.words, self.hits[candidate_id], self.hits[production_id])

    def test_sets(self) -> dict[str, dict[str, int]]:
        """Per word: how many golden, provisional and never-trained test drawings."""
        sets: dict[str, dict[str, int]] = {}
        untrained = self.untrained or [False] * len(self.words)
        for word, golden, fresh in zip(self.words, self.golden, untrained, strict=True):
            counts = sets.setdefault(word, {"golden": 0, "provisional": 0, "untrained": 0})
            counts["untrained" if fresh else "golden" if golden else "provisional"] += 1
        return sets

    @property
    def provisional(self) -> int:
        return sum(c["provisional"] for c in self.test_sets().values())

    @property
    def never_trained(self) -> int:
        return sum(self.untrained)


@task(cache_policy=NO_CACHE)
def score_on_test_set(version_ids: list[int], words: list[str] | None = None) -> Scored:
    """Top-1, top-3, MAP@3, per-word figures and per-drawing hits of each version on the
    test drawings (of `words` only, if given; read once for all of them); each version's
    confusion matrix is stored."""
    ctx = flow_context()
    loaded = {version_id: ctx.load_version(version_id) for version_id in version_ids}
    # The words every scored version knows (production's, for a candidate that adds words).
    shared = set.intersection(*(set(classes) for _, classes in loaded.values()))
    with ctx.sessions() as s:
        golden_and_provisional = evaluation_examples(
            s,
            golden_fraction=ctx.settings.golden_fraction,
            words=None if words is None else set(words),
        )
        unseen = never_trained_examples(s, version_ids=version_ids, words=shared)
    test, untrained = with_never_trained(golden_and_provisional, unseen)
    if not test.labels:
        raise RuntimeError("the test set is empty: import reviewed or dataset drawings first")
    manifest = {**test.manifest(), "never_trained": sum(untrained)}
    reports: dict[int, dict[str, Any]] = {}
    hits: dict[int, list[bool]] = {}
    classes_of: dict[int, list[str]] = {}
    # Every version predicts the same drawings, in the same order: the gate pairs them.
    for version_id, (model, classes) in loaded.items():
        predictions = Predictor(model, classes).predict(test.bitmaps)
        report = score(predictions, test.labels)
        matrix = confusion_matrix([p.label for p in predictions], test.labels, classes)
        key = f"reports/models/{version_id}/confusion.png"
        ctx.storage.put(key, render_confusion_png(matrix, classes), "image/png")
        reports[version_id] = {**report, "confusion_png": key, "test_manifest": manifest}
        hits[version_id] = [p.label == w for p, w in zip(predictions, test.labels, strict=True)]
        classes_of[version_id] = list(classes)
    golden = [
        LabelSource(source) in GOLDEN_SOURCES and not fresh
        for source, fresh in zip(test.sources, untrained, strict=True)
    ]
    return Scored(list(test.labels), golden, reports, hits, classes_of, untrained)


def gate_policy(settings: Settings, *, require_gain: bool = True) -> GatePolicy:
    return GatePolicy(
        alpha=settings.gate_alpha,
        max_overall_drop=settings.gate_max_overall_drop,
        max_word_drop=settings.gate_max_word_drop,
        new_word_min_top1=settings.new_word_min_top1,
        require_gain=settings.gate_require_gain and require_gain,
    )


def _with_interval(figures: dict[str, Any] | None) -> str:
    if not figures:
        return "-"
    low, high = figures["ci95"]
    return f"{percent(figures['top1'])} [{percent(low)}, {percent(high)}]"


def _p(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if value >= 0.001 else "<0.001"


def confusion_markdown(key: str, png: bytes | None, version_id: int) -> str:
    """The confusion matrix: embedded as a data: URI when small enough, and always where it
    is kept (object storage, and the admin page that serves it)."""
    where = (
        f"Kept in object storage at `{key}`; the admin pages serve it at "
        f"`/admin/models/{version_id}/confusion.png`."
    )
    if png is None or len(png) > EMBED_MAX_BYTES:
        return where
    data = base64.b64encode(png).decode("ascii")
    return f"![confusion matrix of v{version_id}](data:image/png;base64,{data})\n\n{where}"


def markdown_report(
    candidate_id: int,
    production_id: int,
    scored: Scored,
    decision: GateDecision,
    confusion: str,
) -> str:
    candidate, production = scored.reports[candidate_id], scored.reports[production_id]
    overall = decision.overall
    lines = [
        f"# Candidate v{candidate_id} vs production v{production_id}",
        "",
        f"**{'Promoted' if decision.promote else 'Not promoted'}.**",
        "",
        *[f"- {reason}" for reason in decision.reasons],
        "",
        f"**The rule.** {decision.rule}",
        "",
        "## All test drawings",
        "",
        "| | candidate | production |",
        "| --- | --- | --- |",
    ]
    for metric in ("n", "top1", "top3", "map3"):
        lines.append(f"| {metric} | {candidate[metric]} | {production[metric]} |")
    lines += [
        "",
        "## The words production knows, drawing by drawing",
        "",
        f"On {overall['n']} drawings: top-1 {_with_interval(overall['production'])} -> "
        f"{_with_interval(overall['candidate'])} (Wilson 95% intervals). "
        f"{overall['b']} drawings production got right are now wrong, {overall['c']} it got "
        f"wrong are now right. p (fall beyond the tolerance) = {_p(overall['p_worse'])}; "
        f"p (candidate better, McNemar) = {_p(overall['p_better'])}.",
        "",
        "## Per word",
        "",
        "Kind: old (production knows it), new (only the candidate does), unknown (neither). "
        "Test drawings: golden (reviewed or imported) + provisional (players' prompt-labelled "
        "doodles held back while a new word has too few golden ones) + never trained "
        "(reviewed or imported drawings of the old words outside the golden split that "
        "neither version nor any ancestor was trained on). b: now wrong, c: now "
        "right. p: for an old word, of a fall beyond the tolerance; for a new word, of a "
        "top-1 below the bar.",
        "",
        "| word | kind | golden + provisional + never trained | candidate top-1 [95%] "
        "| production top-1 [95%] "
        "| b | c | p | blocks |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    test_sets = scored.test_sets()
    for word, entry in sorted(decision.words.items()):
        counts = test_sets.get(word, {"golden": 0, "provisional": 0, "untrained": 0})
        old = entry["kind"] == "old"
        production_figures = entry.get("production") if old else None
        lines.append(
            f"| {word} | {entry['kind']} | {counts['golden']} + {counts['provisional']} + "
            f"{counts['untrained']} | "
            f"{_with_interval(entry.get('candidate'))} | {_with_interval(production_figures)} | "
            f"{entry['b'] if old else '-'} | {entry['c'] if old else '-'} | "
            f"{_p(entry.get('p_drop', entry.get('p_below')))} | "
            f"{'yes' if entry['blocking'] else ''} |"
        )
    lines += ["", f"## Confusion matrix of v{candidate_id}", "", confusion]
    return "\n".join(lines)


@task(cache_policy=NO_CACHE)
def promote(candidate_id: int, reason: str) -> None:
    # The same promote as an operator's: the alias history and the audit log both say so.
    registry.promote(flow_context().sessions, candidate_id, actor="flow:flywheel", reason=reason)


@task(cache_policy=NO_CACHE)
def record_evaluation(
    candidate_id: int,
    candidate: dict[str, Any],
    production_id: int,
    decision: GateDecision,
    production: dict[str, Any],
    provisional: int = 0,
    never_trained: int = 0,
) -> None:
    """Keep the test-set figures and the gate's verdict with the candidate version, and
    production's figures on the same drawings with production (the admin pages show them
    side by side). `golden` keeps its name; `provisional` of its `n` drawings were
    players' doodles held back for new words, `never_trained` imported or reviewed
    drawings outside the golden split no scored version nor ancestor was trained on."""

    def figures(report: dict[str, Any]) -> dict[str, Any]:
        return {
            **{k: report[k] for k in ("n", "top1", "top3", "map3")},
            "provisional": provisional,
            "never_trained": never_trained,
        }

    sessions = flow_context().sessions
    add_metrics(
        sessions,
        candidate_id,
        {"golden": figures(candidate), "gate": {"against": production_id, **decision.as_dict()}},
    )
    add_metrics(sessions, production_id, {"golden": figures(production)})


@flow(name="evaluate-and-gate", log_prints=True)
def evaluate_and_gate(
    candidate_id: int,
    production_id: int,
    note: str = "",
    require_gain: bool = True,
    promote_on_pass: bool = True,
    refit_of: int | None = None,
) -> dict[str, Any]:
    """Score both on the test drawings; promote the candidate only if the gate says so
    (and `promote_on_pass`: the caller may have a refit to try first).

    `production_id` is what the candidate must not fall behind: production, or its clean
    ancestor when production is being replaced after an erasure (`note` says so in the
    promotion's reason, and the caller passes `require_gain=False`: production goes
    anyway, so a candidate no worse than the ancestor is enough).

    `refit_of`: the candidate is the refit of that (passed) candidate on its new words'
    test drawings too. Those words were judged on that candidate; the refit is judged on
    the old words only, and must be no worse there than production."""
    ctx = flow_context()
    old_words = None
    if refit_of is not None:
        # Production's words, from the registry: its weights load once, when scored.
        old_words = registry.describe_version(ctx.sessions, production_id).classes
        require_gain = False
    scored = score_on_test_set([candidate_id, production_id], old_words)
    candidate, production = scored.reports[candidate_id], scored.reports[production_id]
    decision = decide(
        scored.paired(candidate_id, production_id),
        known_words=scored.classes[production_id],
        candidate_words=old_words or scored.classes[candidate_id],
        policy=gate_policy(ctx.settings, require_gain=require_gain),
    )
    if refit_of is not None:
        decision.reasons.append(
            f"refit of v{refit_of}: its new words were judged on v{refit_of}, which did not "
            "train on their test drawings"
        )
    record_evaluation(
        candidate_id,
        candidate,
        production_id,
        decision,
        production,
        scored.provisional,
        scored.never_trained,
    )
    if decision.promote and promote_on_pass:
        reason = f"gate passed: {decision.reasons[0]}"
        promote(candidate_id, f"{reason}; {note}" if note else reason)
    try:
        png: bytes | None = ctx.storage.get(candidate["confusion_png"])
    except StorageError:  # the report must not fail the cycle; it links the matrix instead
        png = None
    create_markdown_artifact(
        markdown_report(
            candidate_id,
            production_id,
            scored,
            decision,
            confusion_markdown(candidate["confusion_png"], png, candidate_id),
        ),
        key="flywheel-report" if refit_of is None else "flywheel-refit-report",
        description="Candidate vs production on the same test drawings, and the gate's verdict",
    )
    get_run_logger().info(
        "candidate v%s top-1 %s vs production v%s top-1 %s: %s",
        candidate_id,
        candidate["top1"],
        production_id,
        production["top1"],
        "promoted" if decision.promote else "; ".join(decision.reasons),
    )
    return {
        "promoted": decision.promote,
        "reasons": decision.reasons,
        "candidate": candidate,
        "production": production,
        "gate": decision.as_dict(),
    }
