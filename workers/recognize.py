"""Recognise doodles in micro-batches: claim -> raster + model -> finish -> wake -> store.

Per batch: one statement claims the queued doodles, one forward pass recognises them,
one statement records the results, one Redis pipeline hands each result to the API
request waiting for it, and only then are the doodles' objects written, so the answer
never waits on object storage. Idempotent: a doodle delivered twice is recorded once.

Attempts count only what the doodle itself may have caused: a doodle whose worker died
holding it is claimed again alone (so it cannot take others down with it) and failed
after `max_attempts`; an unreadable drawing fails alone; infrastructure errors release
or keep the doodles for the sweeper without counting.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import statistics
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from redis.exceptions import RedisError
from sqlalchemy.exc import OperationalError

from core import keys
from core.png import PngLimits
from core.tasks import (
    QUEUE,
    RECOGNITION_WAIT_KEY,
    RECOGNITION_WAIT_TTL_SECONDS,
    done_channel,
    enqueue_erasure,
    message_args,
    result_document,
)
from db import erasures
from db import processing as rec
from db.models import InputFormat
from ml.raster import bitmap_from_png, rasterize_batch
from ml.strokes import to_simplified
from workers.metrics import observe_batch
from workers.model_cache import LoadedModel
from workers.objects import store_kept
from workers.runtime import WorkerRuntime

log = logging.getLogger(__name__)

# Waits between tries to record a finished batch while Postgres is unreachable.
FINISH_RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 4.0)


@dataclass
class BatchReport:
    """What one call did, for logs and tests."""

    done: int = 0
    failed: int = 0
    skipped: int = 0  # already finished, another worker's, or unknown
    outcomes: dict[uuid.UUID, rec.Outcome] = field(default_factory=dict)


def _bitmaps(
    claimed: Sequence[rec.Claimed], png_limits: PngLimits
) -> tuple[list[tuple[rec.Claimed, np.ndarray]], dict]:
    """(doodle, 28x28 bitmap) of the readable doodles, rasterised in one batch, and
    {id: error} of the others. PNGs over `png_limits` are refused from their header."""
    errors: dict[uuid.UUID, str] = {}
    images: list[tuple[rec.Claimed, np.ndarray]] = []
    strokes: list[tuple[rec.Claimed, list]] = []
    for c in claimed:
        try:
            if c.input_format is InputFormat.png:
                if c.payload_png is None:
                    raise ValueError("recognition has no image")
                images.append((c, bitmap_from_png(c.payload_png, png_limits)))
            else:
                strokes.append((c, to_simplified(c.payload)))
        except (ValueError, TypeError, IndexError) as exc:
            # The API refuses bad doodles; anything that slips through fails cleanly.
            errors[c.id] = f"unreadable drawing: {exc}"
    rasters = rasterize_batch(simplified for _, simplified in strokes)
    return images + [(c, r) for (c, _), r in zip(strokes, rasters, strict=True)], errors


def recognize_claimed(
    model: LoadedModel, claimed: Sequence[rec.Claimed], png_limits: PngLimits | None = None
) -> list[rec.Outcome]:
    """Outcomes of claimed doodles: one raster pass, one forward pass; an unreadable drawing
    fails alone (a PNG over `png_limits`, core.png's defaults if None, too)."""
    t0 = time.perf_counter()
    readable, errors = _bitmaps(claimed, png_limits or PngLimits())
    t1 = time.perf_counter()
    outcomes = {rid: rec.Outcome(rid, error=error) for rid, error in errors.items()}
    if readable:
        predictions = model.predictor.predict(np.stack([bitmap for _, bitmap in readable]))
        t2 = time.perf_counter()
        observe_batch("recognize", len(readable), t1 - t0, t2 - t1, model.version_id)
        raster_ms = (t1 - t0) * 1000 / len(claimed)
        for (c, bitmap), prediction in zip(readable, predictions, strict=True):
            queued = (c.started_at - c.created_at).total_seconds()
            outcomes[c.id] = rec.Outcome(
                c.id,
                label=prediction.label,
                confidence=prediction.confidence,
                top=prediction.as_dict()["top"],
                model_version_id=model.version_id,
                timings={
                    "queue_ms": round(max(queued, 0.0) * 1000, 2),
                    "raster_ms": round(raster_ms, 3),  # the batch's, a doodle
                    "inference_ms": round((t2 - t1) * 1000, 3),  # the batch's forward pass
                    "batch": len(readable),
                },
                # Derived from the doodle: kept (for training) only with consent to store.
                bitmap=bitmap.astype(np.uint8).tobytes() if c.store else None,
            )
    return [outcomes[c.id] for c in claimed]


def _result(outcome: rec.Outcome, finished_at: dt.datetime, kept: bool) -> dict[str, Any]:
    """What the waiting request answers with (the same document as the row's)."""
    return result_document(
        status=outcome.status.value,
        finished_at=finished_at,
        label=outcome.label,
        confidence=outcome.confidence,
        top=outcome.top,
        model_version=outcome.model_version_id,
        timings=outcome.timings,
        stored=kept and outcome.error is None,
        error=outcome.error,
    )


def _finish(runtime: WorkerRuntime, outcomes: Sequence[rec.Outcome]) -> dict[uuid.UUID, Any]:
    """Record the outcomes, waiting out a short Postgres outage: the results are in hand."""
    for delay in (*FINISH_RETRY_DELAYS, None):
        try:
            with runtime.autocommit.connect() as conn:
                return rec.finish(conn, outcomes)
        except OperationalError:
            if delay is None:
                raise
            log.warning("recording %d results failed; retrying in %.1fs", len(outcomes), delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


def _notify(runtime: WorkerRuntime, documents: dict[uuid.UUID, dict[str, Any]]) -> None:
    """Hand each result to the API request waiting for it (Prefer: wait), and say how long
    the batch waited in the queue (the API sheds live guesses on it)."""
    if not documents:
        return
    waits = [d["timings"]["queue_ms"] for d in documents.values() if d.get("timings")]
    wait = (
        (RECOGNITION_WAIT_KEY, statistics.median(waits), RECOGNITION_WAIT_TTL_SECONDS)
        if waits
        else None
    )
    # If Redis fails, the results are in Postgres: a waiting request answers 202 and polls.
    runtime.hand_over(
        {done_channel(rid): document for rid, document in documents.items()}, also=wait
    )


def _with_png_keys(
    claimed: Sequence[rec.Claimed], outcomes: Sequence[rec.Outcome]
) -> list[rec.Outcome]:
    """Where each kept PNG will be written (strokes get their segment when it is written,
    workers.objects)."""
    return [
        dataclasses.replace(o, png_key=keys.png_key(c.player_id, c.id))
        if c.store and o.error is None and c.input_format is InputFormat.png
        else o
        for c, o in zip(claimed, outcomes, strict=True)
    ]


def _log_outcomes(
    outcomes: Sequence[rec.Outcome], request_ids: Mapping[uuid.UUID, str | None]
) -> None:
    """A line a doodle, with the request id that made it (failures at WARNING): never its
    strokes or player, and not the error's text, which may quote the drawing."""
    for o in outcomes:
        extra = {"request_id": request_ids.get(o.id)}
        if o.error:
            reason = o.error.split(":", 1)[0]
            log.warning("recognition %s failed: %s", o.id, reason, extra=extra)
        elif log.isEnabledFor(logging.DEBUG):
            log.debug("recognition %s done: %s", o.id, o.label, extra=extra)


def _process(
    runtime: WorkerRuntime,
    model: LoadedModel,
    claimed: Sequence[rec.Claimed],
    report: BatchReport,
    request_ids: Mapping[uuid.UUID, str | None],
) -> None:
    # The claims' leases are renewed while the batch works (workers.leases): a slow batch
    # is not resent as if its worker had died.
    with runtime.leases.holding(claimed):
        png_limits = PngLimits.of(runtime.settings)
        outcomes = _with_png_keys(claimed, recognize_claimed(model, claimed, png_limits))
        finished = _finish(runtime, outcomes)
    done = [(c, o) for c, o in zip(claimed, outcomes, strict=True) if o.id in finished]
    _log_outcomes([o for _, o in done], request_ids)
    _notify(
        runtime,
        {o.id: _result(o, finished[o.id].finished_at, finished[o.id].stored) for _, o in done},
    )
    report.skipped += len(outcomes) - len(done)
    report.failed += sum(1 for _, o in done if o.error)
    report.done += sum(1 for _, o in done if not o.error)
    report.outcomes.update((o.id, o) for o in outcomes)
    # Kept doodles go to object storage now that nobody waits for them (kept: per the
    # consent in force when they finished, not only when they were drawn).
    kept = [
        rec.KeptDoodle(
            c.id, c.player_id, c.input_format, c.payload, c.payload_png, o.strokes_key, o.png_key
        )
        for c, o in done
        if finished[o.id].stored
    ]
    runtime.objects.submit(kept)


def recognition_ids(messages: Sequence[bytes]) -> dict[uuid.UUID, str | None]:
    """{recognition id: id of the API request that made it, if named} of the task messages
    (core.tasks.recognition_message); a malformed message is logged and dropped."""
    ids: dict[uuid.UUID, str | None] = {}
    for raw in messages:
        args = message_args(raw) or []
        try:
            rid = uuid.UUID(str(args[0]))
        except (ValueError, IndexError):
            log.error("dropping a malformed recognition message")
            continue
        named = str(args[1]) if len(args) > 1 and args[1] else None
        ids[rid] = named or ids.get(rid)
    return ids


def recognize_batch(
    runtime: WorkerRuntime,
    ids: Sequence[uuid.UUID],
    request_ids: Mapping[uuid.UUID, str | None] | None = None,
) -> BatchReport:
    """Recognise the doodles of one micro-batch; see the module's docstring.
    `request_ids` name the API requests behind them, for the log lines."""
    request_ids = request_ids or {}
    report = BatchReport()
    unique = list(dict.fromkeys(ids))
    # The model first: if it cannot be had, nothing is claimed and the sweeper resends.
    model = runtime.models.current()
    with runtime.autocommit.connect() as conn:
        claimed = rec.claim_batch(conn, unique)
    try:
        _process(runtime, model, claimed, report, request_ids)
    except OperationalError:
        # Postgres went away for longer than the retries: the claims stay running and
        # the sweeper resends them after their lease.
        raise
    except Exception:
        _release(runtime, [c.id for c in claimed])
        raise
    # The rest were done already, are another worker's, or were abandoned by a dead
    # worker: those are taken one at a time, so a doodle that kills workers dies alone.
    claimed_ids = {c.id for c in claimed}
    for recognition_id in unique:
        if recognition_id not in claimed_ids:
            _recognize_abandoned(runtime, model, recognition_id, report, request_ids)
    return report


def _recognize_abandoned(
    runtime: WorkerRuntime,
    model: LoadedModel,
    recognition_id: uuid.UUID,
    report: BatchReport,
    request_ids: Mapping[uuid.UUID, str | None],
) -> None:
    settings = runtime.settings
    with runtime.engine.begin() as conn:
        claimed = rec.claim_abandoned(conn, recognition_id, settings.lease_seconds)
        if claimed is not None and claimed.attempts > settings.max_attempts:
            reason = f"gave up: a worker died holding it {settings.max_attempts} times"
            rec.fail(conn, recognition_id, reason)
            report.failed += 1
            outcome = rec.Outcome(recognition_id, error=reason)
            report.outcomes[recognition_id] = outcome
            finished = dt.datetime.now(dt.UTC)
            _notify(runtime, {recognition_id: _result(outcome, finished, False)})
            return
    if claimed is None:
        report.skipped += 1
        return
    log.warning(
        "recognising %s again (attempt %d) after its worker died",
        recognition_id,
        claimed.attempts,
        extra={"request_id": request_ids.get(recognition_id)},
    )
    _process(runtime, model, [claimed], report, request_ids)


def _release(runtime: WorkerRuntime, ids: Sequence[uuid.UUID]) -> None:
    try:
        with runtime.engine.begin() as conn:
            rec.release(conn, ids)
    except OperationalError:
        log.warning("could not release %d doodles; the sweeper will resend them", len(ids))


# --------------------------------------------------------------------------- sweeper


@dataclass(frozen=True)
class SweepReport:
    resent: int
    stored: int
    erasures: int = 0


def sweep(
    runtime: WorkerRuntime,
    enqueue: Callable[[uuid.UUID], None],
    enqueue_erasure_request: Callable[[uuid.UUID], None] | None = None,
) -> SweepReport:
    """Resend lost or abandoned work (recognitions, and erasures whose worker died or
    failed), and write the objects storage was down for."""
    settings = runtime.settings
    now = dt.datetime.now(dt.UTC)
    # A queued doodle waits in the broker as long as the backlog lasts; with nothing
    # waiting there, one queued for longer than a lease was lost (a dead worker held
    # it, or the broker lost it), so it is resent sooner than after the stale delay.
    try:
        backlog: int = runtime.redis.llen(QUEUE)
    except RedisError:
        backlog = -1
    queued_grace = settings.lease_seconds if backlog == 0 else settings.sweeper_stale_seconds
    with runtime.engine.begin() as conn:
        stale = rec.claim_stale(
            conn,
            queued_before=now - dt.timedelta(seconds=queued_grace),
            running_before=now - dt.timedelta(seconds=settings.lease_seconds),
        )
    for recognition_id in stale:
        enqueue(recognition_id)
    if stale:
        log.warning("sweeper resent %d unfinished recognitions", len(stale))
    resent_erasures = resend_erasures(
        runtime, enqueue_erasure_request or (lambda pid: enqueue_erasure(runtime.redis, pid))
    )
    return SweepReport(resent=len(stale), stored=store_pending(runtime), erasures=resent_erasures)


def resend_erasures(runtime: WorkerRuntime, enqueue: Callable[[uuid.UUID], None]) -> int:
    """Pending erasures nobody holds (their worker died, or an attempt failed), asked a
    while ago: sent again. A copy that finds the request held or done does nothing."""
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=runtime.settings.lease_seconds)
    with runtime.engine.begin() as conn:
        pending = erasures.stale(conn, before)
    for public_id in pending:
        enqueue(public_id)
    if pending:
        log.warning("sweeper resent %d pending erasures", len(pending))
    return len(pending)


def store_pending(runtime: WorkerRuntime, limit: int = 200) -> int:
    """Write objects of finished doodles that are still waiting for them (oldest first)."""
    if runtime.storage_pause.active:
        return 0
    # Left alone for a moment: the worker that finished them is writing them now.
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=runtime.settings.lease_seconds)
    with runtime.engine.begin() as conn:
        pending = rec.pending_objects(conn, before, limit)
    stored = store_kept(runtime.storage, runtime.engine, runtime.storage_pause, pending)
    if stored:
        log.info("wrote %d pending objects", stored)
    return stored
