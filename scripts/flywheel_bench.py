"""Benchmark: one flywheel cycle (relabel -> fine-tune -> evaluate/gate) on N collected doodles.

    .venv/bin/python scripts/flywheel_bench.py                 # N = 2,500, 5,000, 10,000
    .venv/bin/python scripts/flywheel_bench.py --sizes 1000,20000

For each N, on a fresh database (created on the machine's Postgres, `--server-url`, and dropped
afterwards unless `--keep-db`), a fresh local object folder (STORAGE_URL file://...) and one
Prefect test harness (a temporary Prefect API, started once for all sizes):

1. the seed model is imported as `production` (`services.models.import_model`);
2. the base dataset of the 20 starting words is imported (`services.datasets.import_sources`): the
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

This file is the driver; the data, the timers, the statistics and the report are modules of
scripts/benchkit/ (flywheel_data, timers, stats, flywheel_report). `parse_sizes` and those
modules' pure helpers are unit-tested in tests/unit/test_flywheel_bench.py.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit.flywheel_data import (
    DOODLES_PER_PLAYER,
    Doodles,
    base_sources,
    insert_doodles,
    make_doodles,
)
from benchkit.flywheel_report import (
    fit_stages,
    format_table,
    machine,
    summarize_size,
    training_settings,
)
from benchkit.inputs import shared_data_dir
from benchkit.timers import Timers, instrumented

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SIZES = (2_500, 5_000, 10_000)
DEFAULT_SERVER_URL = "postgresql://root@127.0.0.1:5432/test"
DEFAULT_DB_NAME = "doodle_flywheel_bench"
# Words the seed model rarely mistakes, with confidence, for one of its own (measured on their
# 25 shared drawings: 0-3 of 25 seen as a known word at >= 80 %), so most are accepted.
DEFAULT_NEW_WORDS = ("eye", "cat", "face", "zebra", "spider")

# --------------------------------------------------------------------------- options


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


# --------------------------------------------------------------------------- timed calls


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
    from db import labels, reviews
    from ml.predict import Predictor

    return [
        (flows.flywheel, "relabel", STAGE_CALLS["relabel_s"]),
        (flows.flywheel, "finetune", STAGE_CALLS["finetune_s"]),
        (flows.flywheel, "evaluate_and_gate", STAGE_CALLS["evaluate_s"]),
        (labels, "relabel_candidates", "relabel: relabel_candidates (query)"),
        (labels, "add_labels", "relabel: add_labels (one INSERT)"),
        (reviews, "queue_reviews", "relabel: queue_reviews (one INSERT)"),
        (flows.relabel, "assess", "relabel: quality.assess"),
        (flows.relabel, "decide", "relabel: decide"),
        (Predictor, "predict", "relabel+evaluate: Predictor.predict"),
        (flows.finetune, "split_examples", "finetune: split_examples (query)"),
        (flows.finetune, "select_training_set", "finetune: select_training_set"),
        (flows.finetune, "fine_tune", "finetune: ml.train.fine_tune"),
        (flows.evaluate, "evaluation_examples", "evaluate: evaluation_examples (query)"),
        (flows.evaluate, "score", "evaluate: score"),
        (flows.evaluate, "confusion_matrix", "evaluate: confusion_matrix"),
        (flows.evaluate, "render_confusion_png", "evaluate: render_confusion_png"),
        (flows.evaluate, "create_markdown_artifact", "evaluate: create_markdown_artifact"),
        (core.storage.LocalStorage, "put", "storage.put"),
    ]


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

    from core.settings import Settings
    from db import migrate
    from db.registry import Alias
    from db.session import make_engine, make_session_factory
    from devtools.databases import temporary_database
    from flows.context import FlowContext, use_context
    from flows.flywheel import flywheel
    from ml.network import seed_classes, seed_weights_path
    from services.connections import Connections
    from services.datasets import import_sources
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
    return summarize_size(n, runs)


# --------------------------------------------------------------------------- main


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

    fits = fit_stages(results)
    document = {
        "benchmark": "flywheel cycle vs collected doodles",
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(),
        "settings": training_settings(),
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
