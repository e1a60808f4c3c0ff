"""core.kept_secrets: a secret made once, kept 0600, the same for every process that asks."""

from __future__ import annotations

import itertools
import stat
from concurrent.futures import ThreadPoolExecutor

from core.kept_secrets import kept_secret


def test_made_once_then_read_back(tmp_path):
    path = tmp_path / "home" / "key"
    made = iter(["first", "second"])
    assert kept_secret(path, lambda: next(made)) == ("first", True)
    assert kept_secret(path, lambda: next(made)) == ("first", False)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["key"]  # no temporary left behind


def test_an_empty_file_is_replaced(tmp_path):
    path = tmp_path / "key"
    path.write_text("")
    assert kept_secret(path, lambda: "fresh") == ("fresh", True)


def test_callers_at_the_same_time_all_get_the_same_secret(tmp_path):
    path = tmp_path / "key"
    counter = itertools.count()
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda _: kept_secret(path, lambda: f"s{next(counter)}"), range(32)))
    assert len({secret for secret, _ in got}) == 1
    assert sum(created for _, created in got) == 1
