"""workers.per_process: one object a process; a forked child never touches its parent's."""

from __future__ import annotations

import os

from workers.per_process import PerProcess


class _Thing:
    def __init__(self) -> None:
        self.closed = False


def _holder(made: list[_Thing]) -> PerProcess[_Thing]:
    def make() -> _Thing:
        made.append(_Thing())
        return made[-1]

    return PerProcess(make, lambda thing: setattr(thing, "closed", True))


def test_one_object_a_process_until_reset_closes_it():
    made: list[_Thing] = []
    holder = _holder(made)
    assert holder.get() is holder.get()
    holder.reset()
    assert made[0].closed
    assert holder.get() is not made[0]
    assert len(made) == 2


def test_a_forked_child_makes_its_own_and_leaves_the_parents_open(monkeypatch):
    made: list[_Thing] = []
    holder = _holder(made)
    parents = holder.get()
    monkeypatch.setattr(os, "getpid", lambda: -42)  # as in a forked child
    childs = holder.get()
    assert childs is not parents
    monkeypatch.undo()
    holder.reset()  # back in the parent: the child's object is not the parent's to close
    assert not parents.closed and not childs.closed
