"""Text reports of the scenarios, the environment block and the JSON file."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchkit import REPO_ROOT
from benchkit.depth import coarsen
from benchkit.stats import is_number

LOUD = "!!"  # marks a line that says something went wrong


def fmt(value: Any, digits: int = 1) -> str:
    if not is_number(value) or math.isnan(value):
        return "-"
    return f"{value:,.{digits}f}"


def format_table(rows: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    """A plain-text table of (name, closed-loop summary) rows."""
    header = ("", "req/s", "p50 ms", "p90 ms", "p99 ms", "errors", "top-1", "n")
    lines = [header]
    for name, s in rows:
        acc = s.get("accuracy")
        lines.append(
            (
                name,
                fmt(s.get("throughput_rps")),
                fmt(s.get("p50_ms")),
                fmt(s.get("p90_ms")),
                fmt(s.get("p99_ms")),
                fmt(s.get("errors"), 0),
                f"{acc * 100:.1f}%" if isinstance(acc, float) and not math.isnan(acc) else "-",
                fmt(s.get("requests"), 0),
            )
        )
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in lines
    )


def cpu_line(name: str, s: Mapping[str, Any], per: str = "answer") -> str:
    ms = s.get("cpu_ms_per_ok_request") or {}
    cores = s.get("cores") or {}
    parts = [f"{k} {fmt(v)}" for k, v in ms.items() if is_number(v) and v >= 0.05]
    return (
        f"  {name}: cores busy {fmt(cores.get('machine'), 2)} (other processes "
        f"{fmt(cores.get('other'), 2)}); CPU ms per {per}: " + ", ".join(parts)
    )


def statuses_line(statuses: Mapping[str, int]) -> str:
    return ", ".join(f"{k} x{v}" for k, v in statuses.items()) or "none"


def environment() -> dict[str, Any]:
    cpu_model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    commit = ""
    with contextlib.suppress(OSError, IndexError):
        head = (REPO_ROOT / ".git" / "HEAD").read_text().strip()
        if head.startswith("ref: "):
            commit = (REPO_ROOT / ".git" / head[5:]).read_text().strip()
        else:
            commit = head
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": commit,
        "load_generator": "same machine, one http.client connection per thread",
    }


def config(args: argparse.Namespace, storage: str) -> dict[str, Any]:
    """The options of the run, without URLs that may hold secrets."""
    return {
        k: (str(v) if isinstance(v, Path) else v)
        for k, v in vars(args).items()
        if k not in ("pg_admin_url", "storage_url")
    } | {"storage_used": storage}


def write_json(path: Path, result: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"\nwrote {path}")


def _amount(cfg: Mapping[str, Any], duration: float | None = None) -> str:
    duration = duration or cfg.get("duration")
    return f"{fmt(duration, 0)} s" if duration else f"{cfg['requests']} requests"


def _note(result: Mapping[str, Any]) -> str:
    return (
        f"Note: the load generator shares this {result['environment']['cpus']}-CPU machine with "
        "the servers (and Postgres, Redis, the S3 server); its CPU is listed as 'loadgen'."
    )


# --------------------------------------------------------------------------- compare


def compare_report(result: Mapping[str, Any]) -> str:
    med = result["median"]
    rows = [(name, med[name]) for name in ("baseline", "product") if name in med]
    cfg = result["config"]
    lines = [
        f"Median of {cfg['repeats']} runs a system, concurrency {cfg['concurrency']}, "
        f"{_amount(cfg)} a run, storage {cfg['storage_used']}:",
        format_table(rows),
    ]
    r = result.get("ratio")
    if r:
        lines.append(
            f"product/baseline: throughput x{fmt(r['throughput'], 2)}, p50 x{fmt(r['p50'], 2)}, "
            f"p90 x{fmt(r['p90'], 2)}, p99 x{fmt(r['p99'], 2)}"
        )
    lines += ["", "Every run (alternating):"]
    lines.append(
        format_table([(f"{run['system']} #{run['repeat'] + 1}", run) for run in result["runs"]])
    )
    lines += ["", "CPU (medians; postgres and redis count every such process on the machine):"]
    lines += [cpu_line(name, s) for name, s in rows]
    stages = med.get("product", {}).get("stage_ms")
    if stages:
        lines.append(
            "  product worker stages p50/p99 ms: "
            + ", ".join(f"{k} {fmt(v.get('p50'))}/{fmt(v.get('p99'))}" for k, v in stages.items())
        )
    lines += ["", _note(result)]
    return "\n".join(lines)


# --------------------------------------------------------------------------- burst


def timeline_text(timeline: Sequence[Mapping[str, Any]], per_line: int = 6) -> list[str]:
    """`t: queued/unfinished` cells, `per_line` a line."""

    def count(v: Any) -> str:
        return "?" if not is_number(v) or v < 0 else str(v)

    cells = [
        f"{b['t']:6.1f}s {count(b['queued']):>5}/{count(b['unfinished']):<5}" for b in timeline
    ]
    return ["  " + " |".join(cells[i : i + per_line]) for i in range(0, len(cells), per_line)]


def burst_report(result: Mapping[str, Any]) -> str:
    cfg, b = result["config"], result["burst"]
    sustained = result.get("sustained")
    lines = []
    if sustained:
        lines.append(
            f"Sustained (closed loop, concurrency {cfg['concurrency']}, {_amount(cfg)}): "
            f"{fmt(sustained['throughput_rps'])} req/s, p50 {fmt(sustained['p50_ms'], 0)} ms, "
            f"p99 {fmt(sustained['p99_ms'], 0)} ms, errors {sustained['errors']}"
        )
    else:
        lines.append(f"Sustained rate given: {fmt(result['sustained_rps'])} req/s")
    s = b["sender"]
    lines += [
        f"Burst: {fmt(b['rate_rps'])} req/s (x{fmt(cfg['burst_factor'], 0)}) for "
        f"{fmt(cfg['burst_seconds'], 0)} s, POST /v1/recognitions without Prefer: wait, "
        f"{b['threads']} sender threads",
        f"  sent {s['sent']} (at {fmt(s['sent_rps'])} req/s; sender lag p50/p99/max "
        f"{fmt(s['lag_p50_ms'], 0)}/{fmt(s['lag_p99_ms'], 0)}/{fmt(s['lag_max_ms'], 0)} ms), "
        f"last sent at {fmt(b['end_s'], 2)} s",
        f"  answers: {statuses_line(s['statuses'])}; accepted (2xx with an id) {b['accepted']}",
        *examples_lines(s),
        f"  POST latency (all answers) p50/p90/p99 {fmt(s['all_p50_ms'], 0)}/"
        f"{fmt(s['all_p90_ms'], 0)}/{fmt(s['all_p99_ms'], 0)} ms, max {fmt(s['max_ms'], 0)} ms",
    ]
    lines += lagging(s, b["threads"], b["rate_rps"])
    if s["server_errors"]:
        lines.append(f"{LOUD} {s['server_errors']} answers were 5xx")
    if s["no_answer"]:
        lines.append(f"{LOUD} {s['no_answer']} requests got no HTTP answer")
    o = b["outcomes"]
    lines.append(
        f"  accepted doodles: {o['done']} done, {len(o['failed'])} failed, "
        f"{len(o['unfinished'])} unfinished, {len(o['missing'])} missing from the database"
    )
    for f in o["failed"][:20]:
        lines.append(f"{LOUD} failed {f['id']}: {f['error']}")
    if len(o["failed"]) > 20:
        lines.append(f"{LOUD} ... and {len(o['failed']) - 20} more failed (see the JSON)")
    if o["unfinished"] or o["missing"]:
        lines.append(
            f"{LOUD} {len(o['unfinished'])} accepted doodles unfinished, "
            f"{len(o['missing'])} missing"
        )
    p, d = b["peaks"], b["drain"]
    lines.append(
        f"  peak: {p['queued']} in the Celery queue (+{p['unacked']} fetched, unacked), "
        f"{p['unfinished']} unfinished rows"
    )
    if d["drained_at_s"] is None:
        lines.append(f"{LOUD} not drained {fmt(cfg['drain_timeout'], 0)} s after the burst")
    else:
        lines.append(
            f"  drained {fmt(d['from_end_s'], 1)} s after the burst's last send "
            f"({fmt(d['from_start_s'], 1)} s after its start)"
        )
    step, shown = coarsen(b["timeline"], cfg["timeline_step"])
    given = cfg["timeline_step"]
    finer = f"; every {given:g} s in the JSON" if step != given else ""
    lines.append(
        f"  depth timeline (largest queued/unfinished in each {step:g} s, t from the burst's "
        f"start{finer}):"
    )
    lines += timeline_text(shown)
    if b.get("sampler_errors"):
        lines.append(f"{LOUD} sampler errors: " + "; ".join(b["sampler_errors"][:3]))
    lines += ["", "CPU from the burst's start until drained:"]
    lines.append(cpu_line("product", b, per="accepted doodle"))
    lines += ["", verdict_text(result["verdict"]), "", _note(result)]
    return "\n".join(lines)


def lagging(sender: Mapping[str, Any], threads: int, rate: float, lag_ms: float = 100) -> list:
    """A loud note when the open-loop sender fell behind its schedule, and why."""
    if not is_number(sender["lag_p99_ms"]) or sender["lag_p99_ms"] <= lag_ms:
        return []
    busy = sender["in_flight_mean"]
    why = (
        f"all {threads} sender threads were waiting for answers (mean in flight {fmt(busy)}): "
        "the server's answer time set the pace (--sender-threads allows more in flight)"
        if is_number(busy) and busy >= 0.8 * threads
        else f"mean in flight {fmt(busy)} of {threads} threads: the load generator lacked CPU"
    )
    return [
        f"{LOUD} the sender fell behind its schedule (lag p99 {fmt(sender['lag_p99_ms'], 0)} ms): "
        f"offered {fmt(sender['sent_rps'])}/s, not {fmt(rate)}/s; {why}"
    ]


def examples_lines(sender: Mapping[str, Any], indent: str = "    ") -> list[str]:
    return [f"{indent}{k}: {v}" for k, v in (sender.get("examples") or {}).items()]


def verdict_text(verdict: Mapping[str, Any]) -> str:
    if verdict["ok"]:
        return "PASS: " + "; ".join(verdict["checks"])
    return f"{LOUD} FAIL: " + "; ".join(verdict["problems"])


# --------------------------------------------------------------------------- guesses


def guesses_report(result: Mapping[str, Any]) -> str:
    cfg, med = result["config"], result["median"]
    lines = [
        f"Recognitions (closed loop, concurrency {cfg['concurrency']}, "
        f"{_amount(cfg, result['duration_s'])} a run), median of {cfg['repeats']} runs a mode, "
        f"storage {cfg['storage_used']}:",
        format_table([(mode, med[mode]) for mode in ("alone", "with_guesses") if mode in med]),
    ]
    r = result.get("ratio")
    if r:
        lines.append(
            f"with guesses / alone: throughput x{fmt(r['throughput'], 2)}, "
            f"p50 x{fmt(r['p50'], 2)}, p99 x{fmt(r['p99'], 2)}"
        )
    g = med.get("with_guesses", {}).get("guesses")
    if g:
        lines += [
            "",
            f"Guesses (open loop, POST {cfg['guess_path']} at {fmt(cfg['guess_rate'], 0)}/s, "
            "partial drawings), medians:",
            f"  200 answers p50/p90/p99 {fmt(g['ok_p50_ms'])}/{fmt(g['ok_p90_ms'])}/"
            f"{fmt(g['ok_p99_ms'])} ms (all answers p99 {fmt(g['all_p99_ms'])} ms), "
            f"sender lag p99 {fmt(g['lag_p99_ms'])} ms",
        ]
        lines += lagging(g, result["threads"], cfg["guess_rate"])
    lines += ["", "Every run:"]
    for run in result["runs"]:
        line = f"  #{run['repeat'] + 1} {run['mode']}: " + (
            f"recognitions {fmt(run['throughput_rps'])} req/s, p50 {fmt(run['p50_ms'], 0)} ms, "
            f"p99 {fmt(run['p99_ms'], 0)} ms, errors {run['errors']}"
        )
        if "guesses" in run:
            gs = run["guesses"]
            line += (
                f"; guesses sent {gs['sent']}, {statuses_line(gs['statuses'])}, 200 p50/p99 "
                f"{fmt(gs['ok_p50_ms'])}/{fmt(gs['ok_p99_ms'])} ms"
            )
        lines.append(line)
        lines += examples_lines(run.get("guesses") or {})
    lines += ["", "CPU (medians; per recognition answer; with_guesses includes the guesses):"]
    lines += [cpu_line(mode, med[mode]) for mode in ("alone", "with_guesses") if mode in med]
    t = result["verdict"]["target"]
    lines += [
        "",
        ("" if t["met"] else f"{LOUD} ")
        + f"target guesses p99 <= {fmt(t['limit_ms'], 0)} ms: {'met' if t['met'] else 'MISSED'} "
        f"(median p99 of 200 answers {fmt(t['p99_ms'])} ms)",
        verdict_text(result["verdict"]),
        "",
        _note(result),
    ]
    return "\n".join(lines)
