"""Alembic, driven from Python: no alembic.ini, works from any directory and when installed.

    python -m db.migrate upgrade [REV]        # DATABASE_URL or --url
    python -m db.migrate downgrade REV
    python -m db.migrate current
    python -m db.migrate heads
    python -m db.migrate revision -m "add reviews table" [--autogenerate]

Upgrades and downgrades hold a Postgres advisory lock, so two processes that start
at once (the compose `migrate` service and `make run`) take turns instead of racing:
the second one finds the schema already at head and does nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.pool import NullPool

import migrations
from db.session import make_engine, normalize_url

MIGRATIONS_DIR = Path(migrations.__file__).resolve().parent
VERSIONS_DIR = MIGRATIONS_DIR / "versions"

# pg_advisory_lock key: any constant bigint shared by every process of this app.
# (The first 8 bytes of sha256(b"doodle-flywheel:migrations"), big-endian, signed.)
LOCK_KEY = 152_698_378_171_972_055

# Files: 2026_11_25_0001_initial_schema.py; revision ids: 20261125_0001 (date, then the
# revision's number that day). `revision()` below picks both; the template is the fallback
# for anyone calling alembic's own commands on this Config.
FILE_TEMPLATE = "%(year)d_%(month).2d_%(day).2d_%(hour).2d%(minute).2d_%(slug)s"
FILE_NAME_RE = re.compile(r"^(\d{4})_(\d{2})_(\d{2})_(\d{4})_[a-z0-9_]+\.py$")
REVISION_ID_RE = re.compile(r"^\d{8}_\d{4}$")


def make_config(url: str | None = None) -> Config:
    """An alembic Config pointing at the `migrations` package, with `url` if given."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    # ConfigParser interpolation: a literal % must be doubled.
    cfg.set_main_option("file_template", FILE_TEMPLATE.replace("%", "%%"))
    cfg.set_main_option("truncate_slug_length", "40")
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return cfg


@contextmanager
def _locked_connection(url: str) -> Iterator[Connection]:
    """A connection holding the migration advisory lock (session-level) while in use."""
    engine = make_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": LOCK_KEY})
            conn.commit()
            try:
                yield conn
            finally:
                conn.rollback()  # a failed migration leaves the transaction aborted
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
                conn.commit()
    finally:
        engine.dispose()


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at `url` up to `revision` (default: head), under the lock."""
    cfg = make_config(url)
    with _locked_connection(url) as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        conn.commit()


def downgrade(url: str, revision: str) -> None:
    """Migrate the database at `url` down to `revision` ("base" empties it), under the lock."""
    cfg = make_config(url)
    with _locked_connection(url) as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)
        conn.commit()


def current(url: str) -> str | None:
    """The revision the database is at, or None if it has never been migrated."""
    engine = make_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def heads() -> list[str]:
    """The head revision ids of the scripts (exactly one when the history is linear)."""
    return list(ScriptDirectory.from_config(make_config()).get_heads())


def next_revision_id(today: dt.date | None = None) -> str:
    """`YYYYMMDD_NNNN`: today's date and one more than today's last revision number."""
    today = today or dt.date.today()
    prefix = f"{today:%Y_%m_%d}_"
    numbers = [
        int(m.group(4))
        for p in VERSIONS_DIR.glob("*.py")
        if p.name.startswith(prefix) and (m := FILE_NAME_RE.match(p.name))
    ]
    return f"{today:%Y%m%d}_{max(numbers, default=0) + 1:04d}"


def revision(message: str, *, url: str | None = None, autogenerate: bool = False) -> str:
    """Write a new, named, date-prefixed revision file; returns its id.

    With `autogenerate`, alembic compares `url`'s schema (migrated to head first by you)
    with `db.models`; read and clean up what it writes before committing it.
    """
    if not message.strip():
        raise ValueError("every revision needs a message")
    if autogenerate and url is None:
        raise ValueError("autogenerate needs the URL of a database at head")
    rev_id = next_revision_id()
    cfg = make_config(url)
    # This file's name carries the same date and number as its id.
    name_prefix = f"{rev_id[:4]}_{rev_id[4:6]}_{rev_id[6:8]}_{rev_id[9:]}_"
    cfg.set_main_option("file_template", name_prefix + "%%(slug)s")
    command.revision(cfg, message=message, rev_id=rev_id, autogenerate=autogenerate)
    return rev_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m db.migrate", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--url", default=os.environ.get("DATABASE_URL"), help="default: $DATABASE_URL"
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("upgrade")
    up.add_argument("revision", nargs="?", default="head")
    down = sub.add_parser("downgrade")
    down.add_argument("revision")
    sub.add_parser("current")
    sub.add_parser("heads")
    rev = sub.add_parser("revision")
    rev.add_argument("-m", "--message", required=True)
    rev.add_argument("--autogenerate", action="store_true")
    args = parser.parse_args(argv)

    if args.cmd == "heads":
        print("\n".join(heads()))
        return 0
    if args.cmd == "revision":
        print(revision(args.message, url=args.url, autogenerate=args.autogenerate))
        return 0
    if not args.url:
        parser.error("no database: pass --url or set DATABASE_URL")
    if args.cmd == "upgrade":
        upgrade(args.url, args.revision)
    elif args.cmd == "downgrade":
        downgrade(args.url, args.revision)
    else:
        print(current(args.url) or "(none)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
