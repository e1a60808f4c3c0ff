"""The baseline of the benchmark: the seed project's own design, in one synchronous endpoint.

`POST /recognize` takes the product's JSON body (`drawing`, optional `word`, `player_id`,
`consent`), validates it minimally, simplifies and rasterises the strokes, runs the seed model
inline, writes the PNG to object storage (`STORAGE_URL`, as the product does) under a unique key
and answers 200 with the prediction. No database, no queue: every request does all the work in
the web process before answering. `GET /healthz` answers once the worker process has its model.

Served by gunicorn (gthread); the model is loaded once per gunicorn worker process, after the
fork, with `torch.set_num_threads(1)`:

    python scripts/baseline_app.py --port 8100 --workers 2 --threads 8 \
        --storage-url file:///tmp/bench-objects

Used by scripts/bench.py; not part of the product.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from flask import Flask, jsonify, request  # noqa: E402

MAX_STROKES = 200
MAX_POINTS = 20_000
MAX_COORDINATE = 100_000.0


class _State:
    """Per-process model and storage, built after gunicorn forks (torch is not fork-friendly)."""

    def __init__(self, storage_url: str) -> None:
        self.storage_url = storage_url
        self.lock = threading.Lock()
        self.predictor: Any = None
        self.storage: Any = None

    def ensure(self) -> None:
        if self.predictor is not None:
            return
        with self.lock:
            if self.predictor is not None:
                return
            import torch

            from core.storage import open_storage
            from ml.network import load_model, seed_classes, seed_weights_path
            from ml.predict import Predictor

            torch.set_num_threads(1)
            classes = seed_classes()
            model = load_model(seed_weights_path().read_bytes(), len(classes))
            predictor = Predictor(model, classes)
            predictor.predict(__import__("numpy").zeros((1, 28, 28), dtype="uint8"))  # warm
            self.storage = open_storage(self.storage_url)
            self.predictor = predictor


def _bad(message: str, status: int = 400) -> Any:
    response = jsonify({"error": {"code": "invalid_request", "message": message, "details": {}}})
    response.status_code = status
    return response


def _validate(body: Any) -> str | list[Any]:
    """The drawing, or an error message. Minimal: shape, counts and finite numbers."""
    if not isinstance(body, dict):
        return "expected a JSON object"
    drawing = body.get("drawing")
    if not isinstance(drawing, list) or not drawing:
        return "drawing must be a non-empty list of strokes"
    if len(drawing) > MAX_STROKES:
        return "too many strokes"
    points = 0
    for stroke in drawing:
        if not isinstance(stroke, list) or len(stroke) not in (2, 3):
            return "each stroke must be [[x...], [y...]] (+ [t...])"
        if not all(isinstance(row, list) for row in stroke) or len(stroke[0]) != len(stroke[1]):
            return "each stroke must be [[x...], [y...]] of equal length"
        points += len(stroke[0])
        for v in (*stroke[0], *stroke[1]):
            if (
                isinstance(v, bool)
                or not isinstance(v, int | float)
                or not math.isfinite(v)
                or abs(v) > MAX_COORDINATE
            ):
                return "coordinates must be finite numbers"
    if points < 2 or points > MAX_POINTS:
        return "drawing has too few or too many points"
    return drawing


def create_app(storage_url: str) -> Flask:
    app = Flask("baseline")
    state = _State(storage_url)
    app.config["baseline_state"] = state

    @app.get("/healthz")
    def healthz() -> Any:
        state.ensure()
        return jsonify({"status": "ok", "pid": os.getpid()})

    @app.post("/recognize")
    def recognize() -> Any:
        started = time.perf_counter()
        body = request.get_json(silent=True)
        drawing = _validate(body)
        if isinstance(drawing, str):
            return _bad(drawing)
        state.ensure()
        from core.drawings import render_png
        from ml.raster import rasterize
        from ml.strokes import to_simplified

        try:
            simplified = to_simplified(drawing)
        except ValueError as exc:
            return _bad(str(exc))
        bitmap = rasterize(simplified)
        prediction = state.predictor.predict(bitmap)[0]
        png = render_png(simplified)
        key = f"baseline/{uuid.uuid4()}.png"
        state.storage.put(key, png, "image/png")
        return jsonify(
            {
                "id": key,
                "status": "done",
                "word": body.get("word"),
                "prediction": prediction.as_dict(),
                "model_version": "seed",
                "png_key": key,
                "timings_ms": {"total": round((time.perf_counter() - started) * 1000, 3)},
            }
        )

    return app


def serve(port: int, workers: int, threads: int, storage_url: str, host: str = "127.0.0.1") -> None:
    from gunicorn.app.base import BaseApplication

    app = create_app(storage_url)

    def post_worker_init(worker: Any) -> None:
        app.config["baseline_state"].ensure()  # load the model before taking requests

    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        "timeout": 30,
        "graceful_timeout": 5,
        "loglevel": "warning",
        "post_worker_init": post_worker_init,
    }

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Flask:
            return app

    Server().run()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn processes")
    parser.add_argument("--threads", type=int, default=8, help="threads per process")
    parser.add_argument(
        "--storage-url",
        default=os.environ.get("STORAGE_URL") or "",
        help="object storage (default $STORAGE_URL)",
    )
    args = parser.parse_args(argv)
    if not args.storage_url:
        parser.error("give --storage-url or set STORAGE_URL")
    serve(args.port, args.workers, args.threads, args.storage_url, args.host)


if __name__ == "__main__":
    main()
