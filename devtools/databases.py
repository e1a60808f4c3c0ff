"""Databases of their own on a PostgreSQL server, for the tests and the benchmarks: created
empty or migrated to head, and dropped WITH (FORCE) afterwards (a pool someone forgot to
dispose must not keep a database alive).

`server_url` is any URL on the server whose user may create databases; the database it
names is only used to connect, never changed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from db.session import make_engine


def admin_engine(server_url: str) -> Engine:
    # CREATE / DROP DATABASE cannot run inside a transaction.
    return make_engine(
        server_url,
        poolclass=NullPool,
        isolation_level="AUTOCOMMIT",
        connect_args={"connect_timeout": 5},
    )


def with_database(server_url: str, name: str) -> str:
    """`server_url` with its database replaced by `name` (scheme, host, query kept)."""
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def _checked(name: str) -> str:
    # Names are ours (a prefix and hex), quoted in SQL; refuse anything else outright.
    if not name.replace("_", "").isalnum():
        raise ValueError(f"bad database name {name!r}")
    return name


def create_database(server_url: str, name: str, *, replace: bool = False) -> str:
    """Create database `name` (dropping one of that name first if `replace`); its URL."""
    statements = [f'CREATE DATABASE "{_checked(name)}"']
    if replace:
        statements.insert(0, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin = admin_engine(server_url)
    try:
        with admin.connect() as conn:
            for sql in statements:
                conn.execute(text(sql))
    finally:
        admin.dispose()
    return with_database(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    admin = admin_engine(server_url)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{_checked(name)}" WITH (FORCE)'))
    finally:
        admin.dispose()


@contextmanager
def temporary_database(
    server_url: str,
    *,
    prefix: str = "doodle_tmp_",
    name: str | None = None,
    migrated: bool = False,
    keep: bool = False,
) -> Iterator[str]:
    """Yield the URL of a new database (`name`, replacing one of that name, else `prefix`
    and a random suffix), migrated to head if asked; drop it at the end unless `keep`."""
    chosen = name or f"{prefix}{uuid.uuid4().hex[:12]}"
    url = create_database(server_url, chosen, replace=name is not None)
    try:
        if migrated:
            from db import migrate

            migrate.upgrade(url)
        yield url
    finally:
        if not keep:
            drop_database(server_url, chosen)
