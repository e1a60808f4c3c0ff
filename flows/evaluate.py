"""Evaluate a candidate against production on the golden set, and gate the promotion."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from db.datasets import golden_examples
from flows.context import flow_context
from ml.confusion import confusion_matrix, render_confusion_png
from ml.evaluate import score
from ml.gate import GateDecision, decide
from ml.predict import Predictor
from services import registry
from services.registry import add_metrics


@task(cache_policy=NO_CACHE)
def score_on_golden(version_ids: list[int]) -> dict[int, dict[str, Any]]:
    """top-1, top-3, MAP@3 and per-word figures of each version on the golden set
    (read once for all of them)."""
    ctx = flow_context()
    with ctx.sessions() as s:
        golden = golden_examples(s, golden_fraction=ctx.settings.golden_fraction)
    if not golden.labels:
        raise RuntimeError("the golden set is empty: import reviewed or dataset drawings first")
    manifest = golden.manifest()
    reports: dict[int, dict[str, Any]] = {}
    for version_id in version_ids:
        model, classes = ctx.load_version(version_id)
        predictions = Predictor(model, classes).predict(golden.bitmaps)
        report = score(predictions, golden.labels)
        matrix = confusion_matrix([p.label for p in predictions], golden.labels, classes)
        key = f"reports/models/{version_id}/confusion.png"
        ctx.storage.put(key, render_confusion_png(matrix, classes), "image/png")
        reports[version_id] = {**report, "confusion_png": key, "golden_manifest": manifest}
    return reports


def markdown_report(
    candidate_id: int,
    production_id: int,
    candidate: dict[str, Any],
    production: dict[str, Any],
    decision: GateDecision,
    promoted: bool,
) -> str:
    lines = [
        f"# Candidate v{candidate_id} vs production v{production_id}",
        "",
        f"**{'Promoted' if promoted else 'Not promoted'}.** "
        + (" ".join(decision.reasons) if decision.reasons else ""),
        "",
        "| golden set | candidate | production |",
        "| --- | --- | --- |",
    ]
    for metric in ("n", "top1", "top3", "map3"):
        lines.append(f"| {metric} | {candidate[metric]} | {production[metric]} |")
    lines += [
        "",
        "| word | n | candidate top-1 | production top-1 | change |",
        "| --- | --- | --- | --- | --- |",
    ]
    for word in sorted(candidate["per_word"]):
        c = candidate["per_word"][word]
        p = production["per_word"].get(word)
        change = "new" if p is None else f"{(c['top1'] - p['top1']) * 100:+.1f} pts"
        lines.append(
            f"| {word} | {c['n']} | {c['top1']:.3f} | "
            f"{'-' if p is None else format(p['top1'], '.3f')} | {change} |"
        )
    lines += ["", f"Confusion matrix: `{candidate['confusion_png']}` in object storage."]
    return "\n".join(lines)


@task(cache_policy=NO_CACHE)
def promote(candidate_id: int, reason: str) -> None:
    # The same promote as an operator's: the alias history and the audit log both say so.
    registry.promote(flow_context().sessions, candidate_id, actor="flow:flywheel", reason=reason)


@task(cache_policy=NO_CACHE)
def record_evaluation(
    candidate_id: int, candidate: dict[str, Any], production_id: int, decision: GateDecision
) -> None:
    """Keep the golden figures and the gate's verdict with the candidate version."""
    add_metrics(
        flow_context().sessions,
        candidate_id,
        {
            "golden": {k: candidate[k] for k in ("n", "top1", "top3", "map3")},
            "gate": {"against": production_id, **decision.as_dict()},
        },
    )


@flow(name="evaluate-and-gate", log_prints=True)
def evaluate_and_gate(candidate_id: int, production_id: int, note: str = "") -> dict[str, Any]:
    """Score both on the golden set; promote the candidate only if the gate says so.

    `production_id` is what the candidate must not fall behind: production, or its clean
    ancestor when production is being replaced after an erasure (`note` says so in the
    promotion's reason)."""
    settings = flow_context().settings
    reports = score_on_golden([candidate_id, production_id])
    candidate, production = reports[candidate_id], reports[production_id]
    decision = decide(
        candidate,
        production,
        max_word_drop=settings.gate_max_word_drop,
        max_overall_drop=settings.gate_max_overall_drop,
    )
    record_evaluation(candidate_id, candidate, production_id, decision)
    if decision.promote:
        reason = f"gate passed: golden top-1 {candidate['top1']} >= {production['top1']}"
        promote(candidate_id, f"{reason}; {note}" if note else reason)
    create_markdown_artifact(
        markdown_report(
            candidate_id, production_id, candidate, production, decision, decision.promote
        ),
        key="flywheel-report",
        description="Candidate vs production on the golden set",
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
    }
