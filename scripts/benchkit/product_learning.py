"""One repetition of the product learning benchmark: a fresh product, the old words scored
before, players' drawings posted through the API, one flywheel cycle as the schedule runs it
(`doodle flows run flywheel`), then what players get: the production model scored on drawings
never posted (`doodle eval`). When the gate kept the candidate out, it is scored too, to tell
what the cycle learnt from what the gate let through."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchkit.product_learning_client import post_all
from benchkit.product_learning_data import (
    Post,
    fold_split,
    posts,
    read_lines,
    write_ndjson,
)
from benchkit.product_learning_stack import Stack, last_json

CYCLE_TIMEOUT_SECONDS = 1800.0


@dataclass(frozen=True)
class Plan:
    services: str
    set_no: int  # 1-based
    words: list[str]
    fold: int
    quickdraw: Path
    old_npy: list[Path]  # the old words' test rows, a file a word
    junk: list[str]  # ndjson lines posted as junk (with the set's words as prompts)
    pg_server_url: str
    redis_url: str
    cycle_timeout: float = CYCLE_TIMEOUT_SECONDS
    keep: bool = False
    product: Path | None = None


def junk_posts(lines: list[str], words: list[str], run: str) -> list[Post]:
    """Junk drawings, each posted by a player of its own with one of the set's words as the
    prompt (in turn): what careless or hostile players would send."""
    return [
        Post(f"bench-{run}-junk{i:03d}", words[i % len(words)], json.loads(line)["drawing"])
        for i, line in enumerate(lines)
    ]


def _eval(stack: Stack, sources: list[Path], model: str, name: str) -> dict[str, Any]:
    args = ["eval", "--model", model]
    for source in sources:
        args += ["--drawings", str(source)]
    out, _ = stack.run(args, name)
    return last_json(out)


def _cycle(stack: Stack, timeout: float) -> tuple[dict[str, Any], float]:
    """`doodle flows run flywheel`: its headline and wall time. One that outlives `timeout`
    is killed and counts as a cycle that taught players nothing (production unchanged)."""
    started = time.perf_counter()
    try:
        out, seconds = stack.run(["flows", "run", "flywheel"], "flows-run-flywheel", timeout)
    except subprocess.TimeoutExpired:
        waited = time.perf_counter() - started
        return {"promoted": False, "error": f"killed: not done after {waited:.0f} s"}, waited
    return last_json(out), seconds


def run_once(plan: Plan) -> dict[str, Any]:
    run = f"s{plan.set_no}f{plan.fold}"
    split = fold_split(read_lines(plan.quickdraw, plan.words), plan.fold)
    to_post = posts(split.posted, run, seed=1000 * plan.set_no + plan.fold)
    to_post += junk_posts(plan.junk, plan.words, run)
    result: dict[str, Any] = {
        "set": plan.set_no,
        "fold": plan.fold,
        "words": plan.words,
        "services": plan.services,
    }
    stack_at = Stack(
        plan.services, plan.pg_server_url, plan.redis_url, keep=plan.keep, product=plan.product
    )
    with stack_at as stack:
        result["stack_ready_seconds"] = stack.ready_seconds
        held_out = write_ndjson(stack.tmp / "held_out.ndjson", split.held_out)
        result["old_before"] = _eval(stack, plan.old_npy, "production", "eval-old-before")
        result["posting"] = post_all(stack.base_url, to_post)
        result["posting"]["junk"] = len(plan.junk)
        cycle, seconds = _cycle(stack, plan.cycle_timeout)
        result["cycle"] = cycle
        result["cycle_wall_seconds"] = round(seconds, 2)
        result["new_after"] = _eval(stack, [held_out], "production", "eval-new-after")
        result["old_after"] = _eval(stack, plan.old_npy, "production", "eval-old-after")
        candidate = cycle.get("candidate_version")
        if candidate is not None and not cycle.get("promoted"):
            version = str(candidate)
            result["candidate_new"] = _eval(stack, [held_out], version, "eval-new-candidate")
            result["candidate_old"] = _eval(stack, plan.old_npy, version, "eval-old-candidate")
    return result
