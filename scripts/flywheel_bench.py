"""Benchmark: one flywheel cycle (relabel -> fine-tune -> evaluate/gate) on N collected doodles.

    .venv/bin/python scripts/flywheel_bench.py                 # N = 2,500, 5,000, 10,000
    .venv/bin/python scripts/flywheel_bench.py --sizes 1000,20000

For each N, on a fresh database (created on the machine's Postgres, `--server-url`, and dropped
afterwards unless `--keep-db`), a fresh local object folder (STORAGE_URL file://...) and one
Prefect test harness (a temporary Prefect API, started once for all sizes):

1. the seed model is imported as `production` (`services.models.import_model`);
2. the base dataset of the 20 starting words is imported (`cli.data.import_sources`): the
   .npy bitmaps for the words that have them, the simplified ndjson for the others;
3. N game doodles are inserted in bulk (COPY) as finished recognitions: origin game, a
   prompt word, the 28x28 bitmap, the seed model's answer, and a player with a consent to
   store and train. The drawings are the shared simplified ndjson drawings of the 20 known
   words and `--new-words` words the model does not know, dealt round-robin over the words
   (so every word gets N / words doodles) and, past the 25 real drawings of a word, copies
   with a small random affine distortion (`--no-jitter`: exact copies);
4. `flows.flywheel.flywheel()` runs in-process, as `doodle flows run flywheel` does.

Reported per N: the flow's own timings of relabel, fine-tune and evaluate, the whole cycle's
wall time, the training set's size, the new words, whether the candidate was promoted, and a
breakdown of where each stage spends its time (the main db / ml calls, timed by wrapping them
in this process; nothing in the product is changed). Then, per stage, a least-squares fit
t = a + b * N (b as seconds per 1,000 doodles) and the exponent k of t ~ N^k between the
smallest and largest N (k ~ 1: linear; ~0: flat). A table goes to stdout and everything to
`--out` (var/bench/flywheel.json).

The pure helpers (`parse_sizes`, `deal_words`, `linear_fit`, `growth_exponent`, `fit_stages`)
are unit-tested in tests/unit/test_flywheel_bench.py.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SIZES = (2_500, 5_000, 10_000)
DEFAULT_SERVER_URL = "postgresql://root@127.0.0.1:5432/test"
DEFAULT_DB_NAME = "doodle_flywheel_bench"
# Words the seed model rarely mistakes, with confidence, for one of its own (measured on their
# 25 shared drawings: 0-3 of 25 seen as a known word at >= 80 %), so most are accepted.
DEFAULT_NEW_WORDS = ("eye", "cat", "face", "zebra", "spider")
DOODLES_PER_PLAYER = 20
CONSENT_VERSION = "2026-11"
STAGES = ("relabel_s", "finetune_s", "evaluate_s", "cycle_s")

# --------------------------------------------------------------------------- pure helpers


def parse_sizes(text: str) -> list[int]:
    """'2500,5k,10_000' -> [2500, 5000, 10000] (sorted, distinct, each >= 1)."""
    sizes: set[int] = set()
    for part in text.split(","):
        part = part.strip().lower().replace("_", "")
        if not part:
            continue
        factor = 1
        if part.endswith("k"):
            factor, part = 1000, part[:-1]
        try:
            value = round(float(part) * factor)
        except ValueError as exc:
            raise ValueError(f"not a size: {part!r}") from exc
        if value < 1:
            raise ValueError(f"sizes must be >= 1, got {value}")
        sizes.add(value)
    if not sizes:
        raise ValueError("no sizes given")
    return sorted(sizes)


def deal_words(words: Sequence[str], per_word: Sequence[int], n: int) -> list[tuple[str, int, int]]:
    """The first n doodles, dealt round-robin over the words: (word, drawing index, copy).

    Doodle i is word i % len(words); each word's doodles cycle through its `per_word[w]` real
    drawings, `copy` counting the rounds (0 for the first pass: the real drawing as is). The
    first n of a larger deal are the same n doodles, so sizes share their doodles.
    """
    if len(words) != len(per_word) or not words:
        raise ValueError("need one drawing count per word, and at least one word")
    if any(c < 1 for c in per_word):
        raise ValueError("every word needs at least one drawing")
    out = []
    for i in range(n):
        w = i % len(words)
        k = i // len(words)
        out.append((words[w], k % per_word[w], k // per_word[w]))
    return out


@dataclass(frozen=True)
class Fit:
    intercept: float  # seconds at N = 0
    slope: float  # seconds per doodle
    r2: float  # 1 when the points lie on the line (NaN with fewer than 3 points or no spread)

    @property
    def per_1000(self) -> float:
        return self.slope * 1000


def linear_fit(xs: Sequence[float], ys: Sequence[float]) -> Fit:
    """Ordinary least squares y = a + b x."""
    if len(xs) != len(ys) or len(xs) < 2:
        raise ValueError("need at least two (x, y) points")
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        raise ValueError("the x values must not all be equal")
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx
    intercept = my - slope * mx
    syy = sum((y - my) ** 2 for y in ys)
    if n < 3 or syy == 0:
        r2 = math.nan
    else:
        residual = sum((y - intercept - slope * x) ** 2 for x, y in zip(xs, ys, strict=True))
        r2 = 1 - residual / syy
    return Fit(intercept, slope, r2)


def growth_exponent(xs: Sequence[float], ys: Sequence[float]) -> float:
    """k in y ~ x^k between the smallest and the largest x (NaN if a y is not positive)."""
    if len(xs) != len(ys) or len(xs) < 2:
        raise ValueError("need at least two (x, y) points")
    lo = min(range(len(xs)), key=lambda i: xs[i])
    hi = max(range(len(xs)), key=lambda i: xs[i])
    if xs[lo] <= 0 or xs[lo] == xs[hi] or ys[lo] <= 0 or ys[hi] <= 0:
        return math.nan
    return math.log(ys[hi] / ys[lo]) / math.log(xs[hi] / xs[lo])


def describe_growth(fit: Fit, exponent: float) -> str:
    if math.isnan(exponent):
        return "n/a"
    if exponent < 0.2:
        shape = "flat"
    elif exponent < 0.8:
        shape = "sublinear (fixed cost + linear part)"
    elif exponent <= 1.2:
        shape = "linear"
    else:
        shape = "superlinear"
    return f"{shape}: {fit.intercept:.1f} s + {fit.per_1000:.2f} s per 1,000 doodles"


def fit_stages(results: Sequence[dict[str, Any]], stages: Sequence[str] = STAGES) -> dict:
    """Per stage: the linear fit over the results' `n` and `timings[stage]`, and the exponent."""
    out: dict[str, Any] = {}
    points = [r for r in results if r.get("timings")]
    for stage in stages:
        pairs = [(r["n"], r["timings"][stage]) for r in points if stage in r["timings"]]
        if len({x for x, _ in pairs}) < 2:
            continue
        xs, ys = [float(x) for x, _ in pairs], [float(y) for _, y in pairs]
        fit = linear_fit(xs, ys)
        exponent = growth_exponent(xs, ys)
        out[stage] = {
            "intercept_s": round(fit.intercept, 3),
            "s_per_1000": round(fit.per_1000, 3),
            "r2": None if math.isnan(fit.r2) else round(fit.r2, 4),
            "exponent": None if math.isnan(exponent) else round(exponent, 3),
            "growth": describe_growth(fit, exponent),
        }
    return out


def summarize_runs(runs: Sequence[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per key of the runs' timings: median, min and max over the runs that have it."""
    keys = sorted({k for r in runs for k in r})
    out = {}
    for key in keys:
        values = sorted(float(r[key]) for r in runs if key in r)
        mid = len(values) // 2
        median = values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2
        out[key] = {"median": round(median, 2), "min": values[0], "max": values[-1]}
    return out


# --------------------------------------------------------------------------- timers


@dataclass
class Timers:
    """Wall seconds, CPU seconds (this process, all its threads) and calls of wrapped
    functions, by name."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    cpu: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started, cpu = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - started
                self.cpu[name] += time.process_time() - cpu
                self.calls[name] += 1

        timed.__wrapped__ = fn  # type: ignore[attr-defined]
        return timed

    def as_dict(self) -> dict[str, dict[str, float]]:
        return {
            name: {
                "seconds": round(self.seconds[name], 3),
                "cpu_seconds": round(self.cpu[name], 3),
                "calls": self.calls[name],
            }
            for name in sorted(self.seconds, key=lambda k: -self.seconds[k])
        }


@contextlib.contextmanager
def instrumented(timers: Timers, targets: Sequence[tuple[Any, str, str]]) -> Iterator[None]:
    """Replace each `owner.attr` by a timed wrapper named `name`; restore them afterwards."""
    missing = object()
    saved = []
    try:
        for owner, attr, name in targets:
            # Restore exactly what was there (a staticmethod stays one; an inherited
            # attribute is deleted again), but wrap what a caller actually gets.
            saved.append((owner, attr, vars(owner).get(attr, missing)))
            setattr(owner, attr, timers.wrap(name, getattr(owner, attr)))
        yield
    finally:
        for owner, attr, original in reversed(saved):
            if original is missing:
                delattr(owner, attr)
            else:
                setattr(owner, attr, original)


# The flywheel's three stages, timed around the subflow calls (for their CPU seconds).
STAGE_CALLS = {
    "relabel_s": "stage relabel",
    "finetune_s": "stage finetune",
    "evaluate_s": "stage evaluate",
}


def _targets() -> list[tuple[Any, str, str]]:
    """What to time inside the flows: the names as the flow modules look them up."""
    import core.storage
    import flows.evaluate
    import flows.finetune
    import flows.flywheel
    import flows.relabel
    from db import labels
    from ml.predict import Predictor

    return [
        (flows.flywheel, "relabel", STAGE_CALLS["relabel_s"]),
        (flows.flywheel, "finetune", STAGE_CALLS["finetune_s"]),
        (flows.flywheel, "evaluate_and_gate", STAGE_CALLS["evaluate_s"]),
        (labels, "relabel_candidates", "relabel: relabel_candidates (query)"),
        (labels, "add_label", "relabel: add_label (one INSERT each)"),
        (labels, "queue_review", "relabel: queue_review (one INSERT each)"),
        (flows.relabel, "assess", "relabel: quality.assess"),
        (flows.relabel, "decide", "relabel: decide"),
        (Predictor, "predict", "relabel+evaluate: Predictor.predict"),
        (flows.finetune, "training_examples", "finetune: training_examples (query)"),
        (flows.finetune, "select_training_set", "finetune: select_training_set"),
        (flows.finetune, "fine_tune", "finetune: ml.train.fine_tune"),
        (flows.evaluate, "golden_examples", "evaluate: golden_examples (query)"),
        (flows.evaluate, "score", "evaluate: score"),
        (flows.evaluate, "confusion_matrix", "evaluate: confusion_matrix"),
        (flows.evaluate, "render_confusion_png", "evaluate: render_confusion_png"),
        (flows.evaluate, "create_markdown_artifact", "evaluate: create_markdown_artifact"),
        (core.storage.LocalStorage, "put", "storage.put"),
    ]


# --------------------------------------------------------------------------- data


def shared_data_dir() -> Path:
    return Path(os.environ.get("DOODLE_SHARED_DATA") or REPO_ROOT.parent / "shared" / "data")


def base_sources(shared: Path, words: Sequence[str]) -> list[str]:
    """.npy bitmaps for the words that have them, simplified ndjson for the others (never
    both for a word: the first bitmap rows are the ndjson drawings)."""
    bitmaps = shared / "quickdraw" / "bitmaps"
    manifest = json.loads((bitmaps / "manifest.json").read_text())
    return [
        str(bitmaps / f"{w}.npy")
        if w in manifest
        else str(shared / "quickdraw" / "simplified" / f"{w}.ndjson")
        for w in words
    ]


def _read_drawings(shared: Path, word: str) -> list[Any]:
    path = shared / "quickdraw" / "simplified" / f"{word}.ndjson"
    return [json.loads(line)["drawing"] for line in path.read_text().splitlines() if line.strip()]


def _jitter(drawing: Any, rng: Any) -> list[list[list[float]]]:
    """A small random affine distortion (rotation +-12 deg, x/y scale 0.85..1.15, shear
    +-0.1) of simplified strokes; the rasteriser re-centres and re-fits the result."""
    import numpy as np

    angle = math.radians(rng.uniform(-12, 12))
    sx, sy = rng.uniform(0.85, 1.15, size=2)
    shear = rng.uniform(-0.1, 0.1)
    c, s = math.cos(angle), math.sin(angle)
    matrix = np.array([[c, -s], [s, c]]) @ np.array([[sx, shear], [0.0, sy]])
    out = []
    for stroke in drawing:
        points = np.asarray(stroke[:2], dtype=np.float64)
        moved = matrix @ (points - 127.5) + 127.5
        out.append([moved[0].tolist(), moved[1].tolist()])
    return out


def make_bitmaps(
    shared: Path, words: Sequence[str], n: int, *, jitter: bool, seed: int
) -> tuple[list[str], Any]:
    """The words and (n, 28, 28) uint8 bitmaps of the first n doodles of the deal."""
    import numpy as np

    from ml.raster import rasterize

    drawings = {w: _read_drawings(shared, w) for w in words}
    plan = deal_words(words, [len(drawings[w]) for w in words], n)
    rng = np.random.default_rng(seed)
    cache: dict[tuple[str, int], Any] = {}
    bitmaps = np.empty((n, 28, 28), dtype=np.uint8)
    for i, (word, index, copy) in enumerate(plan):
        if copy == 0 or not jitter:
            if (word, index) not in cache:
                cache[(word, index)] = rasterize(drawings[word][index])
            bitmaps[i] = cache[(word, index)]
        else:
            bitmaps[i] = rasterize(_jitter(drawings[word][index], rng))
    return [w for w, _, _ in plan], bitmaps


@dataclass(frozen=True)
class Doodles:
    words: list[str]  # the prompt word of each doodle
    bitmaps: Any  # (N, 28, 28) uint8
    predictions: list[Any]  # the seed model's answer to each (what the worker stored)


def make_doodles(shared: Path, words: Sequence[str], n: int, *, jitter: bool, seed: int) -> Doodles:
    from ml.network import load_model, seed_classes, seed_weights_path
    from ml.predict import Predictor

    doodle_words, bitmaps = make_bitmaps(shared, words, n, jitter=jitter, seed=seed)
    classes = seed_classes()
    model = load_model(seed_weights_path().read_bytes(), len(classes))
    return Doodles(doodle_words, bitmaps, Predictor(model, classes).predict(bitmaps))


def insert_doodles(
    engine: Any, words: Sequence[str], bitmaps: Any, model_version_id: int, predictions: Any
) -> dict[str, Any]:
    """Players, their consents (store + train) and N finished game recognitions, by COPY."""
    n = len(words)
    players = max(1, math.ceil(n / DOODLES_PER_PLAYER))
    now = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    raw = engine.raw_connection()
    try:
        conn = raw.driver_connection
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO players (id) "
                "SELECT 'bench-player-' || g FROM generate_series(0, %s) g",
                (players - 1,),
            )
            cur.execute(
                "INSERT INTO consents (player_id, version, store, train) "
                "SELECT 'bench-player-' || g, %s, true, true FROM generate_series(0, %s) g "
                "RETURNING id, player_id",
                (CONSENT_VERSION, players - 1),
            )
            consent_of = {player: cid for cid, player in cur.fetchall()}
            columns = (
                "id, origin, player_id, consent_id, consent_store, consent_train, word, "
                "input_format, status, attempts, label, confidence, top, model_version_id, "
                "bitmap, created_at, enqueued_at, started_at, finished_at"
            )
            with cur.copy(f"COPY recognitions ({columns}) FROM STDIN") as copy:
                for i in range(n):
                    player = f"bench-player-{i // DOODLES_PER_PLAYER}"
                    at = now - dt.timedelta(milliseconds=10 * (n - i))
                    p = predictions[i]
                    top = json.dumps([{"label": lb, "confidence": c} for lb, c in p.top])
                    copy.write_row(
                        (
                            uuid.uuid4(),
                            "game",
                            player,
                            consent_of[player],
                            True,
                            True,
                            words[i],
                            "simplified",
                            "done",
                            1,
                            p.label,
                            p.confidence,
                            top,
                            model_version_id,
                            bitmaps[i].tobytes(),
                            at,
                            at,
                            at,
                            at + dt.timedelta(milliseconds=5),
                        )
                    )
        conn.commit()
    finally:
        raw.close()
    return {"players": players, "seconds": round(time.perf_counter() - started, 2)}


# --------------------------------------------------------------------------- one size


def _db_counts(engine: Any) -> dict[str, Any]:
    from sqlalchemy import text

    with engine.connect() as conn:
        labels = dict(conn.execute(text("SELECT source, count(*) FROM labels GROUP BY 1")).all())
        reviews = conn.execute(text("SELECT count(*) FROM reviews")).scalar()
        size = conn.execute(text("SELECT pg_database_size(current_database())")).scalar()
    return {"labels": labels, "reviews": reviews, "database_mb": round(size / 2**20, 1)}


def run_cycle(
    n: int,
    args: argparse.Namespace,
    data: Doodles,
    work: Path,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """One flywheel cycle on a fresh database holding the base dataset and n doodles."""
    from sqlalchemy import text

    from cli.data import import_sources
    from core.settings import Settings
    from db import migrate
    from db.connections import Connections
    from db.registry import Alias
    from db.session import make_engine, make_session_factory
    from devtools.databases import temporary_database
    from flows.context import FlowContext, use_context
    from flows.flywheel import flywheel
    from ml.network import seed_classes, seed_weights_path
    from services.models import import_model

    result: dict[str, Any] = {"n": n}
    setup: dict[str, Any] = {}
    storage_dir = work / f"objects-{n}"
    shutil.rmtree(storage_dir, ignore_errors=True)
    storage_dir.mkdir(parents=True)
    with temporary_database(args.server_url, name=args.db_name, keep=args.keep_db) as url:
        started = time.perf_counter()
        migrate.upgrade(url)
        setup["migrate_s"] = round(time.perf_counter() - started, 2)
        settings = Settings(
            home=work / "home",
            database_url=url,
            storage_url=storage_dir.as_uri(),
            model_check_seconds=0.0,
        )
        classes = seed_classes()
        connections = Connections(settings)
        try:
            seed_version = import_model(
                connections.sessions,
                connections.storage,
                seed_weights_path().read_bytes(),
                classes,
                alias=Alias.PRODUCTION,
                source="seed",
                actor="bench:flywheel",
            ).version
        finally:
            connections.close()
        engine = make_engine(url)
        try:
            sessions = make_session_factory(engine)
            started = time.perf_counter()
            imported = import_sources(sessions, base_sources(args.shared, classes))
            setup["base_import_s"] = round(time.perf_counter() - started, 2)
            setup["base_drawings"] = imported.as_dict()["imported"]
            inserted = insert_doodles(
                engine, data.words[:n], data.bitmaps[:n], seed_version, data.predictions[:n]
            )
            setup["insert_doodles_s"] = inserted["seconds"]
            setup["players"] = inserted["players"]
            if not args.no_analyze:
                started = time.perf_counter()
                with engine.connect() as conn:
                    conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
                setup["analyze_s"] = round(time.perf_counter() - started, 2)
            log(
                f"  N={n}: {setup['base_drawings']} base drawings imported in "
                f"{setup['base_import_s']} s, {n} doodles inserted in {inserted['seconds']} s"
            )

            context = FlowContext(settings)
            use_context(context)
            timers = Timers()
            load_before = os.getloadavg()[0]
            try:
                with instrumented(timers, _targets()):
                    started, cpu = time.perf_counter(), time.process_time()
                    report = flywheel()
                    cycle, cycle_cpu = time.perf_counter() - started, time.process_time() - cpu
            finally:
                use_context(None)
                context.close()
            result["db_after"] = _db_counts(engine)
        finally:
            engine.dispose()
    shutil.rmtree(storage_dir, ignore_errors=True)
    timings = {k: v for k, v in report.get("timings", {}).items() if k in STAGE_CALLS}
    timings["cycle_s"] = round(cycle, 2)
    timings["other_s"] = round(cycle - sum(timings.get(k, 0.0) for k in STAGE_CALLS), 2)
    cpu_seconds = {k: round(timers.cpu[name], 2) for k, name in STAGE_CALLS.items()}
    cpu_seconds["cycle_s"] = round(cycle_cpu, 2)
    result.update(
        timings=timings,
        cpu_seconds=cpu_seconds,
        load_average_before=round(load_before, 2),
        load_average_after=round(os.getloadavg()[0], 2),
        training_examples=report.get("training_examples"),
        new_words=report.get("new_words"),
        promoted=report.get("promoted"),
        reasons=report.get("reasons"),
        golden_top1=report.get("golden_top1"),
        golden_n=report.get("golden_n"),
        relabel=report.get("relabel"),
        breakdown={k: v for k, v in timers.as_dict().items() if k not in STAGE_CALLS.values()},
        setup=setup,
    )
    return result


def run_size(
    n: int, args: argparse.Namespace, data: Doodles, work: Path, log: Callable[[str], None]
) -> dict[str, Any]:
    """`args.repeats` cycles on n doodles (each on a fresh database); medians and each run."""
    runs = []
    for repeat in range(1, args.repeats + 1):
        run = run_cycle(n, args, data, work, log)
        run["repeat"] = repeat
        runs.append(run)
        log(
            f"  N={n} run {repeat}/{args.repeats}: {json.dumps(run['timings'])} "
            f"cpu {json.dumps(run['cpu_seconds'])} load {run['load_average_before']}"
        )
    timings = summarize_runs([r["timings"] for r in runs])
    cpu = summarize_runs([r["cpu_seconds"] for r in runs])
    # The run whose cycle time is the median stands for the size (its breakdown, outcome).
    typical = sorted(runs, key=lambda r: r["timings"]["cycle_s"])[(len(runs) - 1) // 2]
    keep = (
        "training_examples",
        "new_words",
        "promoted",
        "reasons",
        "golden_top1",
        "golden_n",
        "relabel",
        "breakdown",
        "db_after",
        "setup",
    )
    return {
        "n": n,
        "timings": {k: v["median"] for k, v in timings.items()},
        "timings_spread": timings,
        "cpu_seconds": {k: v["median"] for k, v in cpu.items()},
        "typical_repeat": typical["repeat"],
        **{k: typical.get(k) for k in keep},
        "runs": [
            {
                k: r.get(k)
                for k in (
                    "repeat",
                    "timings",
                    "cpu_seconds",
                    "load_average_before",
                    "load_average_after",
                    "training_examples",
                    "promoted",
                )
            }
            for r in runs
        ],
    }


# --------------------------------------------------------------------------- report


def format_table(results: Sequence[dict[str, Any]], fits: dict[str, Any]) -> str:
    def span(r: dict[str, Any], key: str) -> str:
        spread = r.get("timings_spread", {}).get(key)
        if not spread:
            return f"{r['timings'].get(key, math.nan):.1f}"
        if spread["min"] == spread["max"]:
            return f"{spread['median']:.1f}"
        return f"{spread['median']:.1f} ({spread['min']:.1f}-{spread['max']:.1f})"

    head = (
        f"{'doodles':>8} {'relabel s':>17} {'finetune s':>17} {'evaluate s':>17} "
        f"{'other s':>8} {'cycle s':>17} {'cycle cpu s':>11} {'train set':>9} "
        f"{'accepted':>8} {'review':>6} {'new words':>9} {'promoted':>8} {'golden top-1 c/p':>16}"
    )
    lines = [
        "median (min-max) wall seconds over the repeats; cpu: this process, all threads",
        head,
        "-" * len(head),
    ]
    for r in results:
        relabel = r.get("relabel") or {}
        top1 = r.get("golden_top1") or {}
        lines.append(
            f"{r['n']:>8,} {span(r, 'relabel_s'):>17} {span(r, 'finetune_s'):>17} "
            f"{span(r, 'evaluate_s'):>17} {span(r, 'other_s'):>8} {span(r, 'cycle_s'):>17} "
            f"{r.get('cpu_seconds', {}).get('cycle_s', math.nan):>11.1f} "
            f"{r.get('training_examples') or 0:>9,} {relabel.get('accepted', 0):>8,} "
            f"{relabel.get('review', 0):>6,} {len(r.get('new_words') or []):>9} "
            f"{'yes' if r.get('promoted') else 'no':>8} "
            f"{top1.get('candidate', math.nan):>7.4f}/{top1.get('production', math.nan):<7.4f}"
        )
    if fits:
        lines += ["", "growth (least squares t = a + b*N over the sizes; k: t ~ N^k, ends)"]
        for stage, f in fits.items():
            r2 = "n/a" if f["r2"] is None else f"{f['r2']:.3f}"
            lines.append(
                f"  {stage:<11} a = {f['intercept_s']:7.2f} s  b = {f['s_per_1000']:6.2f} s/1,000"
                f"  R2 = {r2:>5}  k = {f['exponent']}  -> {f['growth']}"
            )
    for r in results:
        lines += [
            "",
            f"where the time goes at N = {r['n']:,}, run {r.get('typical_repeat')} "
            "(wrapped calls: wall s, cpu s, calls):",
        ]
        for name, v in r["breakdown"].items():
            lines.append(
                f"  {v['seconds']:8.2f} s {v.get('cpu_seconds', math.nan):8.2f} s "
                f"{v['calls']:>7,}x  {name}"
            )
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    import torch

    return {
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=parse_sizes, default=list(DEFAULT_SIZES))
    parser.add_argument(
        "--new-words",
        default=",".join(DEFAULT_NEW_WORDS),
        help="comma-separated words the seed model does not know, mixed into the doodles",
    )
    parser.add_argument(
        "--server-url",
        default=os.environ.get("BENCH_SERVER_URL", DEFAULT_SERVER_URL),
        help="a Postgres server where the bench may create and drop --db-name",
    )
    parser.add_argument("--db-name", default=DEFAULT_DB_NAME)
    parser.add_argument("--keep-db", action="store_true", help="keep the last size's database")
    parser.add_argument("--shared", type=Path, default=shared_data_dir())
    parser.add_argument("--no-jitter", action="store_true", help="repeat drawings exactly")
    parser.add_argument("--no-analyze", action="store_true", help="skip ANALYZE after inserting")
    parser.add_argument("--seed", type=int, default=7, help="of the doodles' distortions")
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="cycles per size, each on a fresh database; the table shows medians",
    )
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "var" / "bench" / "flywheel.json")
    parser.add_argument("--quiet", action="store_true", help="Prefect logs at WARNING only")
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=None,
        help="torch.set_num_threads for the whole run (default: torch's, one per core)",
    )
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")

    if not (args.shared / "quickdraw").is_dir():
        parser.error(f"shared data not found at {args.shared}; set DOODLE_SHARED_DATA")
    work = Path(tempfile.mkdtemp(prefix="doodle-flywheel-bench-"))
    # Prefect reads its settings at import: a private home, and its logs kept quiet if asked.
    os.environ["PREFECT_HOME"] = str(work / "prefect")
    # The harness's telemetry heartbeat races its own SQLite ("database is locked"): off.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if args.quiet:
        os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
    sys.path.insert(0, str(REPO_ROOT))

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    if args.torch_threads is not None:
        import torch

        torch.set_num_threads(args.torch_threads)

    from ml.network import seed_classes

    known = seed_classes()
    new_words = [w.strip() for w in args.new_words.split(",") if w.strip()]
    clash = sorted(set(new_words) & set(known))
    if clash:
        parser.error(f"not new words (the seed model knows them): {clash}")
    words = [*known, *new_words]
    started = time.perf_counter()
    data = make_doodles(
        args.shared, words, max(args.sizes), jitter=not args.no_jitter, seed=args.seed
    )
    raster_s = round(time.perf_counter() - started, 2)
    log(
        f"rasterised and recognised {len(data.words)} doodles of {len(words)} words in {raster_s} s"
    )

    from prefect.testing.utilities import prefect_test_harness

    results = []
    try:
        started = time.perf_counter()
        with prefect_test_harness(server_startup_timeout=120):
            log(f"Prefect test harness up in {time.perf_counter() - started:.1f} s")
            for n in args.sizes:
                results.append(run_size(n, args, data, work, log))
                log(f"  N={n} medians: {json.dumps(results[-1]['timings'])}")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    from core.settings import Settings

    defaults = Settings()
    fits = fit_stages(results)
    document = {
        "benchmark": "flywheel cycle vs collected doodles",
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(),
        "settings": {
            "train_epochs": defaults.train_epochs,
            "replay_per_word": defaults.replay_per_word,
            "new_word_min_examples": defaults.new_word_min_examples,
            "golden_fraction": defaults.golden_fraction,
            "train_new_rows_only": defaults.train_new_rows_only,
        },
        "data": {
            "known_words": known,
            "new_words": new_words,
            "jitter": not args.no_jitter,
            "doodles_per_player": DOODLES_PER_PLAYER,
            "rasterise_and_recognise_s": raster_s,
        },
        "repeats": args.repeats,
        "torch_threads_option": args.torch_threads,
        "results": results,
        "fits": fits,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2, default=str) + "\n")
    print(format_table(results, fits))
    print(f"\nJSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
