"""Benchmark: the admin's doodle grid (db.doodle_listing.list_doodles) on a million doodles.

    .venv/bin/python scripts/admin_listing_bench.py                    # 1,000,000 doodles
    .venv/bin/python scripts/admin_listing_bench.py --doodles 200000 --repeats 9

On a temporary database (created on `--server-url`, default $DATABASE_URL, migrated to
head, dropped afterwards unless `--keep-db`), SQL's generate_series writes the rows in a
few statements: 10,000 players with a consent to store and train, 5 model versions, and
`--doodles` game doodles spread over the last 60 days, 50 prompt words, the model right
80 % of the time, confidence uniform in 0..1; 90 % kept (consent to store), 99 % of those
recognised. Labels: 60 % of the doodles a `prompt` label, 1 % a reviewer's; reviews: 2 %
pending, 1 % resolved; 20 players with an erasure pending. Then ANALYZE.

For each filter combination: the first page and a deep page (a cursor 80 % of the way
back in time) of 50 doodles, each timed `--repeats` times through list_doodles (a session,
the real query, the rows made into items) after one warm-up; the median and the max are
reported in milliseconds, with the rows the page returned and the indexes EXPLAIN
(ANALYZE) shows it using. A table goes to stdout; `--out` (var/bench/admin_listing.json)
gets everything, plans included.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import time
import uuid
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from db.doodle_listing import (
    DoodleFilters,
    ReviewState,
    list_doodles,
    make_cursor,
    page_query,
)
from db.models import LabelSource
from db.session import make_engine, make_session_factory
from devtools.databases import temporary_database

NOW = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)
SPAN = dt.timedelta(days=60)
WORDS = 50
PAGE = 50

GENERATE = [
    "INSERT INTO players (id) SELECT 'player-' || n FROM generate_series(0, 9999) n",
    "INSERT INTO consents (player_id, version, store, train) "
    "SELECT 'player-' || n, '2026-11', true, true FROM generate_series(0, 9999) n",
    "INSERT INTO model_versions (classes, architecture, artifact_key, checksum, metrics, "
    "dataset_manifest, source) SELECT '[]', 'bench', 'bench/' || n, repeat('0', 64), '{}', "
    "'{}', 'bench' FROM generate_series(1, 5) n",
    # n -> a player, a word, a time; the prediction is the word 80 % of the time.
    """
    INSERT INTO recognitions (id, origin, player_id, consent_id, consent_store,
        consent_train, word, input_format, status, label, confidence, model_version_id,
        created_at, enqueued_at, finished_at, attempts)
    SELECT gen_random_uuid(), 'game', 'player-' || (n % 10000), (n % 10000) + 1,
        n % 10 <> 0, n % 10 <> 0, 'word' || (n % :words), 'simplified',
        (CASE WHEN n % 100 = 7 THEN 'queued' ELSE 'done' END)::recognition_status,
        CASE WHEN random() < 0.8 THEN 'word' || (n % :words)
             ELSE 'word' || floor(random() * :words)::int END,
        random(), 1 + n % 5, t, t, t, 1
    FROM (SELECT n, :now - :span * (n::float8 / :count) AS t
          FROM generate_series(1, :count) n) g
    """,
    """
    INSERT INTO labels (recognition_id, label, source, actor, created_at)
    SELECT id, word, 'prompt', 'flow:relabel', created_at FROM recognitions
    WHERE random() < 0.6
    """,
    """
    INSERT INTO labels (recognition_id, label, source, actor, created_at)
    SELECT id, 'word' || floor(random() * :words)::int, 'reviewer', 'reviewer:bench',
        created_at FROM recognitions WHERE random() < 0.01
    """,
    """
    INSERT INTO reviews (recognition_id, reason, status, created_at, resolved_at, resolved_by)
    SELECT l.recognition_id, 'spot_check', 'resolved', l.created_at, l.created_at,
        'reviewer:bench' FROM labels l WHERE l.source = 'reviewer'
    ON CONFLICT DO NOTHING
    """,
    """
    INSERT INTO reviews (recognition_id, reason, created_at)
    SELECT id, 'scribble', created_at FROM recognitions WHERE random() < 0.02
    ON CONFLICT DO NOTHING
    """,
    "INSERT INTO erasures (player_ref, player_id) "
    "SELECT 'ref' || n, 'player-' || (n * 37) FROM generate_series(1, 20) n",
]

CASES: list[tuple[str, DoodleFilters]] = [
    ("no filter", DoodleFilters()),
    ("word", DoodleFilters(word="word7")),
    ("predicted word", DoodleFilters(predicted="word7")),
    ("word + predicted differs", DoodleFilters(word="word7", predicted="word8")),
    ("word + confidence < 0.3", DoodleFilters(word="word7", max_confidence=0.3)),
    ("confidence 0.2..0.4", DoodleFilters(min_confidence=0.2, max_confidence=0.4)),
    ("effective label", DoodleFilters(label="word7")),
    ("label source reviewer", DoodleFilters(label_source=LabelSource.reviewer)),
    ("label + source prompt", DoodleFilters(label="word7", label_source=LabelSource.prompt)),
    ("no label", DoodleFilters(label_source="none")),
    ("review pending", DoodleFilters(review=ReviewState.pending)),
    ("review none", DoodleFilters(review=ReviewState.none)),
    ("model version", DoodleFilters(model_version=3)),
    ("player", DoodleFilters(player_id="player-42")),
    ("4-day window", DoodleFilters(since=NOW - dt.timedelta(days=14), until=NOW - SPAN / 6)),
]


def generate(url: str, count: int) -> float:
    engine = make_engine(url)
    started = time.perf_counter()
    params = {"words": WORDS, "count": count, "now": NOW, "span": SPAN}
    try:
        with engine.begin() as conn:
            for sql in GENERATE:
                conn.execute(text(sql), params)
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    finally:
        engine.dispose()
    return time.perf_counter() - started


def plan(s: Session, filters: DoodleFilters, after: str | None) -> list[str]:
    compiled = page_query(filters, after=after, limit=PAGE).compile(
        dialect=postgresql.psycopg.dialect()  # type: ignore[attr-defined]
    )
    conn = s.connection()
    conn.exec_driver_sql("SET LOCAL max_parallel_workers_per_gather = 0")  # as list_doodles
    rows = conn.exec_driver_sql(
        "EXPLAIN (ANALYZE, BUFFERS) " + str(compiled), compiled.construct_params()
    )
    return [r[0] for r in rows]


def time_page(s: Session, filters: DoodleFilters, after: str | None, repeats: int) -> dict:
    rows = len(list_doodles(s, filters, after=after, limit=PAGE).items)  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        list_doodles(s, filters, after=after, limit=PAGE)
        times.append((time.perf_counter() - started) * 1000)
    lines = plan(s, filters, after)
    indexes = sorted(
        {w for line in lines for w in line.replace(",", " ").split() if w.startswith("ix_")}
    )
    return {
        "median_ms": round(statistics.median(times), 2),
        "max_ms": round(max(times), 2),
        "rows": rows,
        "indexes": indexes,
        "plan": lines,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--doodles", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("var/bench/admin_listing.json"))
    args = parser.parse_args()
    if not args.server_url:
        parser.error("set DATABASE_URL or --server-url (a Postgres server to make a database on)")
    deep = make_cursor(NOW - SPAN * 0.8, uuid.UUID(int=(1 << 128) - 1))
    with temporary_database(
        args.server_url, prefix="doodle_bench_", migrated=True, keep=args.keep_db
    ) as url:
        seconds = generate(url, args.doodles)
        print(f"{args.doodles:,} doodles generated in {seconds:.0f} s", flush=True)
        engine = make_engine(url)
        results = []
        try:
            with make_session_factory(engine)() as s:
                for name, filters in CASES:
                    first = time_page(s, filters, None, args.repeats)
                    deeper = time_page(s, filters, deep, args.repeats)
                    results.append({"case": name, "first": first, "deep": deeper})
                    print(
                        f"| {name} | {first['median_ms']:.1f} ({first['max_ms']:.1f}) "
                        f"| {deeper['median_ms']:.1f} ({deeper['max_ms']:.1f}) "
                        f"| {first['rows']}/{deeper['rows']} | {', '.join(first['indexes'])} |",
                        flush=True,
                    )
        finally:
            engine.dispose()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"doodles": args.doodles, "repeats": args.repeats, "results": results}, indent=1)
    )


if __name__ == "__main__":
    main()
