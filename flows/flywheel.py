"""The nightly cycle: relabel -> fine-tune -> evaluate -> gate -> promote."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from prefect import flow, get_run_logger

from db.models import TrainingRun
from db.registry import Alias
from flows.context import flow_context
from flows.evaluate import evaluate_and_gate
from flows.finetune import finetune
from flows.relabel import relabel


def _record_run(run: TrainingRun) -> int:
    with flow_context().sessions.begin() as s:
        s.add(run)
        s.flush()
        return run.id


def _finish_run(run_id: int, status: str, report: dict[str, Any], candidate_id: int | None) -> None:
    with flow_context().sessions.begin() as s:
        run = s.get(TrainingRun, run_id)
        assert run is not None
        run.status = status
        run.report = report
        run.candidate_version_id = candidate_id
        run.finished_at = dt.datetime.now(dt.UTC)


@flow(name="flywheel", log_prints=True)
def flywheel() -> dict[str, Any]:
    """One cycle; returns the headline figures (also kept in training_runs.report)."""
    ctx = flow_context()
    production_id = ctx.alias_version(Alias.PRODUCTION)
    if production_id is None:
        raise RuntimeError("no production model: run `doodle models import ... --alias production`")
    settings = ctx.settings
    run_id = _record_run(
        TrainingRun(
            parent_version_id=production_id,
            status="running",
            params={
                "epochs": settings.train_epochs,
                "seed": settings.train_seed,
                "replay_per_word": settings.replay_per_word,
                "new_word_min_examples": settings.new_word_min_examples,
                "gate_max_word_drop": settings.gate_max_word_drop,
                "gate_max_overall_drop": settings.gate_max_overall_drop,
                "golden_fraction": settings.golden_fraction,
            },
        )
    )
    timings: dict[str, float] = {}
    report: dict[str, Any] = {"run": run_id, "production_version": production_id}
    try:
        started = time.perf_counter()
        report["relabel"] = relabel()
        timings["relabel_s"] = round(time.perf_counter() - started, 2)

        started = time.perf_counter()
        candidate = finetune()
        timings["finetune_s"] = round(time.perf_counter() - started, 2)
        report.update(
            candidate_version=candidate.version_id,
            new_words=candidate.new_words,
            training_examples=candidate.examples,
        )
        if candidate.version_id is None:
            report.update(promoted=False, reasons=[candidate.skipped], timings=timings)
            _finish_run(run_id, "skipped", report, None)
            get_run_logger().info("no candidate: %s", candidate.skipped)
            return report

        started = time.perf_counter()
        outcome = evaluate_and_gate(candidate.version_id, production_id)
        timings["evaluate_s"] = round(time.perf_counter() - started, 2)
        report.update(
            promoted=outcome["promoted"],
            reasons=outcome["reasons"],
            golden_top1={
                "candidate": outcome["candidate"]["top1"],
                "production": outcome["production"]["top1"],
            },
            golden_n=outcome["candidate"]["n"],
            confusion_png=outcome["candidate"]["confusion_png"],
            timings=timings,
        )
    except Exception as exc:
        report.update(promoted=False, error=str(exc)[:500], timings=timings)
        _finish_run(run_id, "failed", report, report.get("candidate_version"))
        raise
    _finish_run(
        run_id, "promoted" if report["promoted"] else "rejected", report, candidate.version_id
    )
    return report
