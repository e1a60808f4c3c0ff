"""Live guesses while the player draws: strokes so far -> the model's best guesses.

Nothing is stored: the strokes travel in the message and the answer goes back on a Redis
list the API request waits on. A guess whose client stopped waiting is skipped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.tasks import guess_channel, message_args
from ml.raster import rasterize_batch
from ml.strokes import to_simplified
from workers.metrics import observe_batch
from workers.runtime import WorkerRuntime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GuessRequest:
    id: str
    drawing: Any
    deadline: float  # time.time() past which nobody waits for the answer


def guess_requests(messages: Sequence[bytes]) -> list[GuessRequest]:
    """The guesses task messages carry (core.tasks.guess_message); malformed ones dropped."""
    out = []
    for raw in messages:
        try:
            guess_id, drawing, deadline = message_args(raw) or []
            out.append(GuessRequest(str(guess_id), drawing, float(deadline)))
        except (ValueError, TypeError):
            log.error("dropping a malformed guess message")
    return out


def guess_batch(runtime: WorkerRuntime, requests: Sequence[GuessRequest]) -> int:
    """Answer the live guesses still awaited; returns how many were answered."""
    now = time.time()
    live = [r for r in requests if r.deadline > now]
    answers: dict[str, dict[str, Any]] = {}
    readable: list[tuple[GuessRequest, list]] = []
    for r in live:
        try:
            readable.append((r, to_simplified(r.drawing)))
        except (ValueError, TypeError, IndexError) as exc:
            answers[r.id] = {"error": f"unreadable drawing: {exc}"}
    if readable:
        model = runtime.models.current()
        t0 = time.perf_counter()
        bitmaps = rasterize_batch(s for _, s in readable)
        t1 = time.perf_counter()
        predictions = model.predictor.predict(bitmaps)
        t2 = time.perf_counter()
        observe_batch("guess", len(readable), t1 - t0, t2 - t1, model.version_id)
        recognise_ms = round((t2 - t0) * 1000, 3)
        for (r, _), prediction in zip(readable, predictions, strict=True):
            answers[r.id] = {
                "guesses": prediction.as_dict()["top"],
                "model_version": model.version_id,
                "timings": {"recognise_ms": recognise_ms, "batch": len(readable)},
            }
    if answers and not runtime.hand_over(
        {guess_channel(guess_id): answer for guess_id, answer in answers.items()}
    ):
        return 0
    return len(answers)
