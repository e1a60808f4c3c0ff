"""The nightly cycle: relabel -> fine-tune -> evaluate -> gate -> promote, then delete
the weights of versions trained on erased doodles that nothing may serve any more.

After an erasure (production, or an ancestor, trained on erased doodles), the candidate
starts from production's nearest clean ancestor and is gated against it; if it does not
pass, the clean ancestor itself is promoted: after one cycle nothing in service was
trained on erased doodles. The erasures' receipts then name the replacement.
"""

from __future__ import annotations

import time
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext

from db.registry import Alias
from flows.context import flow_context
from flows.evaluate import evaluate_and_gate, promote
from flows.finetune import Candidate, finetune
from flows.relabel import relabel
from services import cycles, lineage, vocabulary


def _finish_run(run_id: int, status: str, report: dict[str, Any], candidate_id: int | None) -> None:
    cycles.finish_cycle(flow_context().sessions, run_id, status, report, candidate_id)


def _stage(run_id: int, stage: str) -> None:
    """What the cycle is doing now, for the admin page's progress."""
    cycles.set_stage(flow_context().sessions, run_id, stage)


@task(cache_policy=NO_CACHE)
def replace_tainted_production(
    start: lineage.CleanStart, candidate_id: int | None, promoted: bool
) -> dict[str, Any]:
    """Production was trained on erased doodles: the promoted candidate replaces it, or
    else its clean ancestor does. The receipts name the replacement."""
    ctx = flow_context()
    replacement = candidate_id if promoted and candidate_id is not None else start.base_id
    if replacement == start.base_id:
        why = "no candidate" if candidate_id is None else f"candidate v{candidate_id} rejected"
        promote(start.base_id, f"{start.note()}; back to clean ancestor ({why})")
    receipts = lineage.record_replacement(ctx.sessions, start.tainted, replacement)
    get_run_logger().info(
        "v%s (trained on erased doodles) replaced by v%s", start.production_id, replacement
    )
    return {**start.as_dict(), "replaced_by": replacement, "receipts": receipts}


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def delete_tainted_weights() -> list[int]:
    ctx = flow_context()
    return lineage.delete_tainted_weights(
        ctx.sessions, ctx.storage, history=ctx.settings.erased_weights_history
    )


@flow(name="flywheel", log_prints=True)
def flywheel(requested_by: str = "cli", reason: str = "") -> dict[str, Any]:
    """One cycle; returns the headline figures (also kept in training_runs.report).

    It takes the cycle that was requested (services.cycles), or starts one asked for by
    `requested_by`; while another cycle runs it starts nothing and says so (`busy`)."""
    ctx = flow_context()
    production_id = ctx.alias_version(Alias.PRODUCTION)
    if production_id is None:
        raise RuntimeError("no production model: run `doodle models import ... --alias production`")
    settings = ctx.settings
    start = lineage.clean_start(ctx.sessions, production_id)
    params = {
        "epochs": settings.train_epochs,
        "seed": settings.train_seed,
        "replay_per_word": settings.replay_per_word,
        "new_word_min_examples": settings.new_word_min_examples,
        "gate_max_word_drop": settings.gate_max_word_drop,
        "gate_max_overall_drop": settings.gate_max_overall_drop,
        "gate_alpha": settings.gate_alpha,
        "gate_require_gain": settings.gate_require_gain,
        "new_word_min_top1": settings.new_word_min_top1,
        "golden_fraction": settings.golden_fraction,
    }
    flow_run = FlowRunContext.get()
    with cycles.hold_cycle(
        ctx.sessions,
        actor=requested_by,
        reason=reason,
        flow_run_id=str(flow_run.flow_run.id) if flow_run and flow_run.flow_run else None,
        params=params,
        parent_version_id=start.base_id,
    ) as held:
        if isinstance(held, cycles.Busy):
            get_run_logger().info("no cycle started: %s", held.reason)
            return {"started": False, "busy": held.reason, "run": held.run_id, "promoted": False}
        return _run_cycle(held.id, production_id, start)


def _gate(candidate: Candidate, start: lineage.CleanStart) -> dict[str, Any]:
    """Gate the candidate; promote it at once unless a refit may replace it."""
    assert candidate.version_id is not None
    # After an erasure the bar is the clean ancestor: production may not serve on.
    # Production goes anyway after an erasure: no worse than the ancestor is enough.
    return evaluate_and_gate(
        candidate.version_id,
        start.base_id,
        start.note() if start.replaces else "",
        require_gain=not start.replaces,
        promote_on_pass=not candidate.held_back,
    )


def unlearnt_words(outcome: dict[str, Any], new_words: list[str], alpha: float) -> list[str]:
    """The new words that alone kept a candidate out (the old words held, other new words
    passed): a candidate without them may pass."""
    if outcome["promoted"]:
        return []
    gate = outcome["gate"]
    words = gate["words"]
    if gate["overall"]["p_worse"] < alpha or any(
        entry["blocking"] for entry in words.values() if entry["kind"] == "old"
    ):
        return []
    failing = sorted(w for w, e in words.items() if e["kind"] == "new" and e["blocking"])
    return failing if set(new_words) - set(failing) else []


def _refit(
    candidate: Candidate,
    start: lineage.CleanStart,
    outcome: dict[str, Any],
    left_out: list[str],
) -> dict[str, Any]:
    """The gate passed `candidate`, trained without its new words' provisional test
    drawings: a refit on every drawing replaces it when it is no worse on the old words
    (else the candidate is promoted as gated). A word's 5 held-back drawings of 25 are a
    fifth of what it learns from."""
    assert candidate.version_id is not None
    note = start.note() if start.replaces else ""
    refit = finetune(start.base_id, refit_of=candidate.version_id, leave_out=left_out)
    if refit.version_id is not None:
        checked = evaluate_and_gate(
            refit.version_id, start.base_id, note, refit_of=candidate.version_id
        )
        if checked["promoted"]:
            return {
                "promoted_version": refit.version_id,
                "training_examples": refit.examples,
                "reasons": checked["reasons"],
            }
        reasons = checked["reasons"]
    else:
        reasons = [refit.skipped or "no refit"]
    reason = f"gate passed: {outcome['reasons'][0]}; refit not kept"
    promote(candidate.version_id, f"{reason}; {note}" if note else reason)
    return {
        "promoted_version": candidate.version_id,
        "refit_version": refit.version_id,
        "reasons": reasons,
    }


def _run_cycle(run_id: int, production_id: int, start: lineage.CleanStart) -> dict[str, Any]:
    timings: dict[str, float] = {}
    report: dict[str, Any] = {"run": run_id, "production_version": production_id}
    if start.replaces:
        report["erasure"] = start.as_dict()
    try:
        started = time.perf_counter()
        _stage(run_id, "relabel")
        report["relabel"] = relabel()
        report["proposed_words"] = vocabulary.awaiting_confirmation(flow_context().sessions)
        timings["relabel_s"] = round(time.perf_counter() - started, 2)

        started = time.perf_counter()
        _stage(run_id, "finetune")
        candidate = finetune(start.base_id)
        timings["finetune_s"] = round(time.perf_counter() - started, 2)
        report.update(
            candidate_version=candidate.version_id,
            new_words=candidate.new_words,
            training_examples=candidate.examples,
        )
        if candidate.version_id is None:
            report.update(promoted=False, reasons=[candidate.skipped], timings=timings)
            if start.replaces:
                report["erasure"] = replace_tainted_production(start, None, False)
            report["weights_deleted"] = delete_tainted_weights()
            _finish_run(run_id, "skipped", report, None)
            get_run_logger().info("no candidate: %s", candidate.skipped)
            return report

        started = time.perf_counter()
        _stage(run_id, "evaluate")
        outcome = _gate(candidate, start)
        timings["evaluate_s"] = round(time.perf_counter() - started, 2)
        left_out = unlearnt_words(outcome, candidate.new_words, flow_context().settings.gate_alpha)
        if left_out:
            # One word not learnt blocks the others: try again without it (next cycle, with
            # more drawings or a reviewer's, it may make it).
            started = time.perf_counter()
            _stage(run_id, "finetune")
            retry = finetune(start.base_id, leave_out=left_out)
            if retry.version_id is not None:
                report["left_out"] = {
                    "words": left_out,
                    "first_candidate": candidate.version_id,
                    "reasons": outcome["reasons"],
                }
                report.update(candidate_version=retry.version_id, new_words=retry.new_words)
                candidate, outcome = retry, _gate(retry, start)
            timings["retry_s"] = round(time.perf_counter() - started, 2)
        # The version the cycle ends with: the gated candidate, or the refit that replaced it.
        final_id = candidate.version_id
        if outcome["promoted"] and candidate.held_back:
            started = time.perf_counter()
            _stage(run_id, "refit")
            report["refit"] = _refit(candidate, start, outcome, left_out)
            timings["refit_s"] = round(time.perf_counter() - started, 2)
            final_id = report["refit"]["promoted_version"]
        report.update(
            promoted=outcome["promoted"],
            reasons=outcome["reasons"],
            golden_top1={
                "candidate": outcome["candidate"]["top1"],
                "production": outcome["production"]["top1"],
            },
            golden_n=outcome["candidate"]["n"],
            # What the gate judged the old words on: both versions, the same drawings.
            old_words={
                "n": outcome["gate"]["overall"]["n"],
                "candidate_top1": outcome["gate"]["overall"]["candidate"]["top1"],
                "production_top1": outcome["gate"]["overall"]["production"]["top1"],
            },
            confusion_png=outcome["candidate"]["confusion_png"],
            timings=timings,
        )
        if start.replaces:
            report["erasure"] = replace_tainted_production(start, final_id, outcome["promoted"])
        report["weights_deleted"] = delete_tainted_weights()
    except Exception as exc:
        report.update(promoted=False, error=str(exc)[:500], timings=timings)
        _finish_run(run_id, "failed", report, report.get("candidate_version"))
        raise
    _finish_run(run_id, "promoted" if report["promoted"] else "rejected", report, final_id)
    return report
