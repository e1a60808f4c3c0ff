"""After erasures, the files: what Postgres and Redis still hold of erased players on disk.

A DELETE commits, yet the bytes stay: in dead tuples, in the free space a plain VACUUM
leaves in a page (it packs the live tuples together but never clears the gap), in index
pages, in the WAL; and Redis' append-only file replays every command it took, so the
values of deleted keys and the DEL naming them stay in it until it is rewritten.

So once erasures are done, once per burst of them (`scrub_erased_data`, which the erasure
task calls after each; it waits while others are pending, for at most MAX_DELAY):

- Postgres: VACUUM FULL of each table erasures touch (db.erasures.ERASED_TABLES): new
  files without the dead rows, the old ones truncated at commit. It holds an ACCESS
  EXCLUSIVE lock on the table while it copies it (about 6 s for 400 MB here), and waits
  at most LOCK_WAIT for it, so that nobody queues long behind it: a busy table is left for
  the next call. A table over DOODLE_ERASURE_REWRITE_MAX_MB gets a plain VACUUM instead
  (no long lock; the erased bytes may stay in its pages' free space until overwritten),
  named in the report and the log. Then a CHECKPOINT (if the role may), after which the
  WAL before it can be recycled.
- Redis: BGREWRITEAOF when append-only is on, BGSAVE when snapshots are configured; a
  rewrite already running started before the deletes, so it is asked again next time.

What this cannot reach (WAL not yet recycled, archives, backups, replicas' own files) is
stated in the README with how long it stays.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import redis
from redis.exceptions import LockError, ResponseError
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from db import erasures as q
from db.session import make_engine
from services.connections import Connections

log = logging.getLogger(__name__)

# A burst of erasures is scrubbed once, when the last is done; never later than this.
MAX_DELAY = dt.timedelta(minutes=15)
LOCK_WAIT = dt.timedelta(milliseconds=500)
_LOCK = "doodle:erasure:scrub:lock"
_LOCK_SECONDS = 3600  # a scrub that died holding the lock frees it after this
# What was scrubbed: erasures completed up to this moment (Postgres' clock), per store.
_POSTGRES_THROUGH = "doodle:erasure:scrub:postgres-through"
_REDIS_THROUGH = "doodle:erasure:scrub:redis-through"
_LOCK_NOT_AVAILABLE = "55P03"
_INSUFFICIENT_PRIVILEGE = "42501"


@dataclass
class ScrubReport:
    # Sessions whose snapshot predates the scrub: the deleted rows stay visible to them, so
    # Postgres was left for the next call.
    held_back_by: int = 0
    rewritten: list[str] = field(default_factory=list)  # VACUUM FULL
    vacuumed: list[str] = field(default_factory=list)  # plain VACUUM: over the size limit
    busy: list[str] = field(default_factory=list)  # lock not free: left for next time
    checkpoint: bool = False
    redis: list[str] = field(default_factory=list)  # what Redis was asked to rewrite
    complete: bool = False  # False: something is left for the next call


def scrub_erased_data(
    connections: Connections, redis_client: redis.Redis, *, wait_for_pending: bool = True
) -> ScrubReport | None:
    """Rewrite what still holds erased data, if erasures were done since the last time;
    None when there is nothing to do, or not yet (other erasures are pending: the last one
    scrubs). A report that is not `complete` left something for a later call (a table's
    lock was busy, older snapshots held the rows, Redis was rewriting already, another
    scrub was running). `wait_for_pending`: False scrubs even while some are pending."""
    with connections.engine.begin() as conn:
        now = q.database_now(conn)
        latest = q.latest_completion(conn)
        pending = wait_for_pending and q.any_pending(conn)
    owed = {
        store: since
        for store, key in (("postgres", _POSTGRES_THROUGH), ("redis", _REDIS_THROUGH))
        if (since := _owed_since(redis_client, key, latest)) is not None
    }
    if not owed:
        return None
    if pending and now - min(owed.values()) < MAX_DELAY:
        return None  # the last erasure of the burst scrubs for all of them
    lock = redis_client.lock(_LOCK, timeout=_LOCK_SECONDS, blocking=False)
    if not lock.acquire():
        # Another one runs; it may have begun before the last erasure: ask again later.
        return ScrubReport(complete=False)
    try:
        report = ScrubReport(complete=True)
        if "postgres" in owed:
            _scrub_postgres(connections, now, report)
            if report.busy or report.held_back_by:
                report.complete = False
            else:
                redis_client.set(_POSTGRES_THROUGH, now.isoformat())
        if "redis" in owed:
            if _scrub_redis(redis_client, report):
                redis_client.set(_REDIS_THROUGH, now.isoformat())
            else:
                report.complete = False
    finally:
        try:
            lock.release()
        except LockError:
            log.warning("the erasure scrub outlived its lock")
    log.info(
        "erasure scrub: held back by %d sessions, rewrote %s, vacuumed only (over the size "
        "limit) %s, busy %s, checkpoint %s, redis %s",
        report.held_back_by,
        report.rewritten,
        report.vacuumed,
        report.busy,
        report.checkpoint,
        report.redis or "nothing",
    )
    return report


def _owed_since(
    redis_client: redis.Redis, key: str, latest: dt.datetime | None
) -> dt.datetime | None:
    """When the last scrub of a store was, if an erasure was done since (else None)."""
    if latest is None:
        return None
    raw = redis_client.get(key)
    text_ = raw.decode() if isinstance(raw, bytes) else raw
    through = dt.datetime.fromisoformat(text_) if text_ else None
    if through is not None and latest <= through:
        return None
    return through or latest


def _scrub_postgres(connections: Connections, start: dt.datetime, report: ScrubReport) -> None:
    # A connection of its own: VACUUM refuses a transaction, and it may run longer than the
    # statement timeout the pooled connections have.
    engine = make_engine(
        connections.settings.db_url,
        poolclass=NullPool,
        isolation_level="AUTOCOMMIT",
        connect_args={"connect_timeout": 10},
    )
    try:
        with engine.connect() as conn:
            report.held_back_by = q.sessions_with_older_snapshots(conn, start)
            if report.held_back_by:
                return
            conn.execute(text("SET statement_timeout = 0"))
            conn.execute(text(f"SET lock_timeout = {int(LOCK_WAIT.total_seconds() * 1000)}"))
            limit = connections.settings.erasure_rewrite_max_mb * 1024 * 1024
            for table in q.existing_tables(conn, q.ERASED_TABLES):
                full = q.table_bytes(conn, table) <= limit
                if not _vacuum(conn, table, full=full):
                    report.busy.append(table)
                else:
                    (report.rewritten if full else report.vacuumed).append(table)
            report.checkpoint = _checkpoint(conn)
    finally:
        engine.dispose()


def _vacuum(conn: Connection, table: str, *, full: bool) -> bool:
    try:
        q.vacuum_table(conn, table, full=full)
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == _LOCK_NOT_AVAILABLE:
            return False
        raise
    return True


def _checkpoint(conn: Connection) -> bool:
    try:
        q.checkpoint(conn)
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == _INSUFFICIENT_PRIVILEGE:
            log.warning("no CHECKPOINT (the role may not): WAL is recycled at the next one")
            return False
        raise
    return True


def _scrub_redis(redis_client: redis.Redis, report: ScrubReport) -> bool:
    """Ask Redis to rewrite its files; False when a rewrite that began before is running
    (it may hold erased values: ask again next time)."""
    persistence = redis_client.info("persistence")
    done = True
    if int(persistence.get("aof_enabled", 0)):
        done = _background(redis_client.bgrewriteaof, "aof", report) and done
    if _snapshots_configured(redis_client):
        # Scheduled: it starts once an AOF rewrite running now is over.
        done = _background(lambda: redis_client.bgsave(schedule=True), "rdb", report) and done
    return done


def _background(command: Callable[[], object], name: str, report: ScrubReport) -> bool:
    try:
        command()
    except ResponseError as exc:
        if "in progress" in str(exc):
            return False
        raise
    report.redis.append(name)
    return True


def _snapshots_configured(redis_client: redis.Redis) -> bool:
    try:
        save = redis_client.config_get("save").get("save", "")
    except ResponseError:  # CONFIG disabled (managed Redis): its snapshots are its own
        return False
    return bool(str(save).strip())
