"""Retention: game doodles older than DOODLE_RETENTION_DAYS leave every store.

The same removal as a player's erasure (services.removal: rows, objects, Redis), a
batch at a time. Doodles inside a golden set or a model's training data go the same
way: the golden set is read afresh at each evaluation, and the dataset manifest of
every version trained on them records how many were removed (``"removed":
{"retention": n}``) next to the counts it was trained on.

Each run also prunes the Idempotency-Keys older than DOODLE_IDEMPOTENCY_TTL_HOURS (they
answer for nothing any more; a request may take an expired key over before this).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from db import lineage as db_lineage
from db.datasets import expired_game_doodles
from db.idempotency import prune_expired
from flows.context import flow_context
from services.removal import remove_doodles

BATCH = 1_000
WHY = "retention"


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def remove_expired(before: dt.datetime, batch: int = BATCH) -> dict[str, Any]:
    """Remove the game doodles created before `before`; counts per kind, and per model
    version the examples it lost."""
    ctx = flow_context()
    counts: Counter[str] = Counter()
    per_version: Counter[int] = Counter()
    seen: set[object] = set()
    while True:
        with ctx.sessions() as s:
            ids = expired_game_doodles(s, before, batch)
            trained = db_lineage.versions_trained_on(s, ids)
        if not ids or seen.issuperset(ids):
            break  # none left (or only ones another removal is busy with: next run)
        seen.update(ids)
        counts.update(remove_doodles(ctx, ctx.redis, ids))
        # After the removal, so a retried batch never counts twice (the lineage rows go
        # with the doodles); a batch that dies just before this line undercounts.
        with ctx.sessions.begin() as s:
            db_lineage.record_removed_examples(s, trained, WHY)
        per_version.update(trained)
    return {"removed": dict(counts), "model_versions": dict(per_version)}


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def prune_idempotency_keys(batch: int = 10 * BATCH) -> int:
    """Delete the expired Idempotency-Keys, a batch a transaction; how many."""
    ctx = flow_context()
    pruned = 0
    while True:
        with ctx.sessions.begin() as s:
            deleted = prune_expired(s, ctx.settings.idempotency_ttl_hours, batch)
        pruned += deleted
        if deleted < batch:
            return pruned


@flow(name="retention", log_prints=True)
def retention() -> dict[str, Any]:
    """Remove the game doodles older than the retention (DOODLE_RETENTION_DAYS; 0: keep),
    and the expired Idempotency-Keys."""
    keys = {"idempotency_keys_pruned": prune_idempotency_keys()}
    days = flow_context().settings.retention_days
    if days <= 0:
        return {"retention_days": days, "removed": {}, "model_versions": {}, **keys}
    before = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    outcome = remove_expired(before)
    get_run_logger().info(
        "retention %s days: removed %s doodles created before %s",
        days,
        outcome["removed"].get("recognitions", 0),
        before.isoformat(),
    )
    return {"retention_days": days, "before": before.isoformat(), **outcome, **keys}
