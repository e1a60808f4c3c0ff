"""The pure helpers of scripts/benchkit beyond statistics: pacing, open-loop summaries, partial
drawings, queue depth and drain arithmetic, verdicts and the CLI's options. No clock, no I/O."""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
import sys
from pathlib import Path

import pytest

from tests.fixtures.benchkit import load_benchkit

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


load_benchkit()

from benchkit import burst, cpu, depth, guesses, inputs, load, report, stats, summaries  # noqa: E402
from benchkit.depth import DepthSample  # noqa: E402
from benchkit.summaries import Shot  # noqa: E402


def _cli():
    spec = importlib.util.spec_from_file_location("doodle_bench_cli", SCRIPTS / "bench.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- pacing


def test_pacing_schedule_is_evenly_spaced_from_zero():
    times = load.pacing_schedule(50.0, 2.0)
    assert len(times) == 100
    assert times[0] == 0.0
    assert times[1] == pytest.approx(0.02)
    assert times[-1] == pytest.approx(1.98)
    assert all(b > a for a, b in itertools.pairwise(times))


def test_pacing_schedule_keeps_only_times_before_the_end():
    assert len(load.pacing_schedule(233.7, 5.0)) == 1169  # 1168 / 233.7 s < 5 s
    assert all(t < 5.0 for t in load.pacing_schedule(233.7, 5.0))
    assert len(load.pacing_schedule(0.1 * 3, 10.0)) == 3  # 0.30000000000000004 * 10
    assert load.pacing_schedule(0.5, 1.0) == [0.0]


@pytest.mark.parametrize(("rate", "duration"), [(0, 5), (-1, 5), (10, 0), (math.inf, 1)])
def test_pacing_schedule_rejects_nonsense(rate, duration):
    with pytest.raises(ValueError):
        load.pacing_schedule(rate, duration)


def test_sender_threads_follow_littles_law_within_bounds():
    assert load.sender_threads(50) == 13  # 50/s x 0.25 s
    assert load.sender_threads(1) == 8
    assert load.sender_threads(100_000) == 256
    assert load.sender_threads(300, latency_s=0.1) == 30


def test_target_with_headers_copies():
    t = load.Target("p", "h", 1, "/v1/recognitions", {"Prefer": "wait=10", "X-API-Key": "k"})
    g = t.with_headers(path="/v1/guesses", Prefer=None)
    assert g.path == "/v1/guesses" and g.headers == {"X-API-Key": "k"}
    assert t.headers["Prefer"] == "wait=10"  # the original is untouched
    assert t.with_headers(X_Trace="1").headers["X-Trace"] == "1"


# --------------------------------------------------------------------------- judges


def test_judge_accepted_reads_the_id_of_2xx():
    assert load.judge_accepted(202, b'{"id": "abc", "status": "queued"}') == ("abc", None)
    assert load.judge_accepted(202, b"oops") == (None, "bad_body")
    down = b'{"error": {"code": "unavailable", "message": "down", "details": {}}}'
    assert load.judge_accepted(503, down) == ("unavailable: down", None)
    assert load.judge_accepted(502, b"<html>Bad Gateway</html>") == (
        "<html>Bad Gateway</html>",
        None,
    )


def test_judge_guess_checks_the_contract():
    body = {"guesses": [{"label": "cup", "confidence": 0.7}], "model_version": 1}
    assert load.judge_guess(200, json.dumps(body).encode()) == ("cup", None)
    assert load.judge_guess(200, b'{"guesses": []}') == (None, None)
    assert load.judge_guess(200, b'{"guesses": "cup"}') == (None, "bad_body")
    assert load.judge_guess(200, b'{"guesses": [{"confidence": 1}]}') == (None, "bad_body")
    assert load.judge_guess(200, b"<html>") == (None, "bad_body")
    assert load.judge_guess(429, b"") == ("", None)


def test_summarize_shots_keeps_one_example_of_each_error():
    shots = [
        Shot(0, 0, 0, 1.0, 200, info="cup"),
        Shot(1, 0, 0, 1.0, 400, info="invalid_request: first"),
        Shot(2, 0, 0, 1.0, 400, info="invalid_request: second"),
        Shot(3, 0, 0, 1.0, 0, error="ConnectionResetError"),
    ]
    assert summaries.summarize_shots(shots, 1.0)["examples"] == {"400": "invalid_request: first"}


# --------------------------------------------------------------------------- open-loop summary


def _shot(i, status, latency=10.0, lag=0.0, error=None, rate=10.0):
    due = i / rate
    return Shot(i, due, due + lag / 1000, latency, status, error)


def test_summarize_shots_counts_statuses_and_percentiles():
    shots = [_shot(i, 200, latency=float(i + 1)) for i in range(8)]
    shots += [_shot(8, 429, latency=1.0), _shot(9, 503, latency=2.0)]
    shots.append(_shot(10, 0, latency=3000.0, error="TimeoutError"))
    shots.append(_shot(11, 200, latency=5.0, error="bad_body"))
    s = summaries.summarize_shots(shots, elapsed_s=2.0)
    assert s["sent"] == 12
    assert s["ok"] == 8  # the 200 its judge refused is not ok
    assert s["statuses"] == {"200": 8, "200 bad_body": 1, "429": 1, "503": 1, "TimeoutError": 1}
    assert s["server_errors"] == 1 and s["no_answer"] == 1
    assert s["ok_p50_ms"] == pytest.approx(4.5)
    assert s["ok_p99_ms"] == pytest.approx(stats.percentile(range(1, 9), 99))
    assert s["all_p99_ms"] > 1000  # the timeout shows over all answers
    assert s["max_ms"] == 3000.0
    assert s["ok_rps"] == 4.0
    assert s["offered_rps"] == pytest.approx(10.0)
    json.dumps(s)


def test_summarize_shots_lag_and_other_ok_statuses():
    shots = [_shot(0, 202), _shot(1, 202, lag=50.0), _shot(2, 500, lag=5.0)]
    s = summaries.summarize_shots(shots, elapsed_s=1.0, ok_statuses=(202,))
    assert s["ok"] == 2
    assert s["lag_max_ms"] == pytest.approx(50.0)
    assert s["lag_p50_ms"] == pytest.approx(5.0)
    assert Shot(0, 1.0, 0.9, 1.0, 200).lag_ms == 0.0  # early is not negative lag


def test_in_flight_mean_and_the_lag_note():
    # Two requests always in flight: each takes 1 s, one sent every 0.5 s for 4 s.
    shots = [Shot(i, i * 0.5, i * 0.5, 1000.0, 202) for i in range(8)]
    s = summaries.summarize_shots(shots, elapsed_s=4.5, ok_statuses=(202,))
    assert s["in_flight_mean"] == pytest.approx(8 / 4.5)
    assert report.lagging(s, threads=2, rate=2.0) == []  # on schedule
    late = summaries.summarize_shots(
        [Shot(i, i * 0.25, i * 0.5, 1000.0, 202) for i in range(8)], 4.5, (202,)
    )
    note = report.lagging(late, threads=2, rate=4.0)
    assert len(note) == 1 and "sender threads were waiting" in note[0]


def test_summarize_shots_empty():
    s = summaries.summarize_shots([], elapsed_s=1.0)
    assert s["sent"] == 0 and math.isnan(s["ok_p99_ms"]) and math.isnan(s["offered_rps"])
    with pytest.raises(ValueError):
        summaries.summarize_shots([], elapsed_s=0)


def test_percentiles_names_its_keys():
    assert stats.percentiles([1, 2, 3], (50, 99.9)) == {
        "p50": 2.0,
        "p99.9": pytest.approx(2.998),
    }


# --------------------------------------------------------------------------- partial drawings


def test_partial_drawings_grow_stroke_by_stroke_with_two_points_at_least():
    dot = [[5], [5]]
    line = [[0, 10], [0, 10]]
    drawing = [dot, line, [[1, 2, 3], [4, 5, 6]]]
    parts = inputs.partial_drawings(drawing)
    assert parts == [[dot, line], drawing]  # the lone dot (1 point) is left out
    assert inputs.partial_drawings([dot]) == []
    assert inputs.partial_drawings([[[5, 5], [5, 5]]]) == []  # two points, one place


def test_guess_bodies_carry_only_the_drawing_and_honour_the_limit():
    drawings = [("cup", [[[0, 1], [0, 1]], [[2, 3], [2, 3]]]), ("hat", [[[0, 9], [0, 9]]])]
    bodies = [json.loads(b) for b in inputs.guess_bodies(drawings)]
    assert [len(b["drawing"]) for b in bodies] == [1, 2, 1]
    assert set(bodies[0]) == {"drawing"}
    assert len(inputs.guess_bodies(drawings, limit=2)) == 2


# --------------------------------------------------------------------------- depth and drain


def _depths(*rows):
    return [DepthSample(t, q, 0, u) for t, q, u in rows]


def test_drain_time_after_the_burst():
    samples = _depths((0.0, 0, 0), (1.0, 40, 50), (5.0, 90, 120), (8.0, 3, 5), (9.0, 0, 0))
    d = depth.drain_time(samples, start_t=0.0, end_t=5.0)
    assert d == {"drained_at_s": 9.0, "from_start_s": 9.0, "from_end_s": 4.0}


def test_drain_time_counts_unfinished_rows_after_the_queue_is_empty():
    samples = _depths((0.0, 5, 5), (1.0, 0, 2), (2.0, 0, 0))
    assert depth.drain_time(samples, 0.0, 0.5)["drained_at_s"] == 2.0


def test_drain_time_before_the_end_is_zero_after_it():
    samples = _depths((0.0, 1, 1), (1.0, 0, 0), (2.0, 0, 0), (6.0, 0, 0))
    d = depth.drain_time(samples, start_t=0.0, end_t=5.0)
    assert d["from_start_s"] == 1.0 and d["from_end_s"] == 0.0


def test_drain_time_never_busy_and_never_drained():
    quiet = _depths((0.0, 0, 0), (1.0, 0, 0))
    assert depth.drain_time(quiet, 0.0, 5.0)["from_start_s"] == 0.0
    stuck = _depths((0.0, 0, 0), (1.0, 3, 3), (300.0, 1, 1))
    assert depth.drain_time(stuck, 0.0, 5.0) == {
        "drained_at_s": None,
        "from_start_s": None,
        "from_end_s": None,
    }


def test_drain_time_skips_unreadable_samples():
    samples = _depths((0.0, 4, 4), (1.0, -1, -1), (2.0, 0, 0))
    assert depth.drain_time(samples, 0.0, 0.0)["drained_at_s"] == 2.0
    samples = _depths((0.0, 4, 4), (1.0, 0, -1))
    assert depth.drain_time(samples, 0.0, 0.0)["drained_at_s"] is None


def test_depth_timeline_takes_the_largest_value_of_each_bucket():
    samples = _depths(
        (-0.2, 0, 0), (0.0, 1, 2), (0.1, 5, 9), (0.4, 3, 4), (0.5, 2, 7), (1.7, -1, 1)
    )
    timeline = depth.depth_timeline(samples, step=0.5)
    assert [(b["t"], b["queued"], b["unfinished"]) for b in timeline] == [
        (-0.5, 0, 0),
        (0.0, 5, 9),
        (0.5, 2, 7),
        (1.5, -1, 1),  # empty buckets are left out; -1: unreadable
    ]
    with pytest.raises(ValueError):
        depth.depth_timeline(samples, step=0)


def test_coarsen_merges_buckets_into_at_most_the_limit():
    timeline = [
        {"t": i * 0.5, "queued": i, "unacked": 0, "unfinished": 100 - i} for i in range(-1, 200)
    ]
    step, shown = depth.coarsen(timeline, 0.5, max_buckets=48)
    assert step == 2.5  # 201 buckets of 0.5 s -> factor 5
    assert len(shown) <= 48
    assert shown[0] == {"t": -2.5, "queued": -1, "unacked": 0, "unfinished": 101}
    assert shown[1] == {"t": 0.0, "queued": 4, "unacked": 0, "unfinished": 100}
    short = timeline[:10]
    assert depth.coarsen(short, 0.5) == (0.5, short)
    assert depth.coarsen([], 0.5) == (0.5, [])


def test_peaks():
    samples = [DepthSample(0, 3, 1, 9), DepthSample(1, 7, 4, 2), DepthSample(2, -1, -1, -1)]
    assert depth.peaks(samples) == {"queued": 7, "unacked": 4, "unfinished": 9}
    assert depth.peaks([]) == {"queued": -1, "unacked": -1, "unfinished": -1}


def test_classify_outcomes():
    rows = [
        ("a", "done", None),
        ("b", "failed", "boom"),
        ("c", "running", None),
        ("z", "done", None),  # not one of ours
    ]
    out = depth.classify_outcomes(["a", "b", "c", "d"], rows)
    assert out["accepted"] == 4 and out["done"] == 1
    assert out["failed"] == [{"id": "b", "error": "boom"}]
    assert out["unfinished"] == [{"id": "c", "status": "running"}]
    assert out["missing"] == ["d"]


def test_libpq_url_drops_the_driver():
    assert depth.libpq_url("postgresql+psycopg://u@h:1/db?x=1") == "postgresql://u@h:1/db?x=1"
    assert depth.libpq_url("postgresql://u@h/db") == "postgresql://u@h/db"


# --------------------------------------------------------------------------- verdicts, CPU


def _sender(server_errors=0, no_answer=0):
    return {"server_errors": server_errors, "no_answer": no_answer}


def _outcomes(accepted=3, failed=(), unfinished=(), missing=()):
    return {
        "accepted": accepted,
        "done": accepted - len(failed) - len(unfinished) - len(missing),
        "failed": list(failed),
        "unfinished": list(unfinished),
        "missing": list(missing),
    }


def test_burst_verdict():
    drained = {"drained_at_s": 9.0, "from_start_s": 9.0, "from_end_s": 4.0}
    ok = burst.verdict(_sender(), _outcomes(failed=[{"id": "x", "error": "e"}]), drained)
    assert ok["ok"] and not ok["problems"]
    bad = burst.verdict(
        _sender(server_errors=2),
        _outcomes(unfinished=[{"id": "c", "status": "queued"}]),
        {"drained_at_s": None, "from_start_s": None, "from_end_s": None},
    )
    assert not bad["ok"] and len(bad["problems"]) == 3
    assert "FAIL" in report.verdict_text(bad)
    assert not burst.verdict(_sender(), _outcomes(accepted=0), drained)["ok"]


def test_guesses_verdict():
    fine = {"statuses": {"200": 90, "429": 10}, "ok": 90}
    met = guesses.verdict([fine], 12.0)
    assert met["ok"] and met["target"]["met"]
    slow = guesses.verdict([fine], 35.0)
    assert slow["ok"] and not slow["target"]["met"]  # the target is reported, not failed
    missing = guesses.verdict([{"statuses": {"404": 100}, "ok": 0}], math.nan)
    assert not missing["ok"] and not missing["target"]["met"]
    assert any("404 x100" in p for p in missing["problems"])
    assert "no guess was answered 200" in missing["problems"]


def test_cpu_figures():
    delta = {"api": 1.0, "worker": 3.0, "loadgen": 0.5, "_machine_busy": 6.0}
    f = cpu.cpu_figures(delta, elapsed_s=2.0, answers=100)
    assert f["cpu_s"] == {"api": 1.0, "worker": 3.0, "loadgen": 0.5}
    assert f["cpu_ms_per_ok_request"]["worker"] == 30.0
    assert f["cores"] == {"machine": 3.0, "measured": 2.25, "other": 0.75}
    assert cpu.cpu_figures(delta, 1.0, answers=0)["cpu_ms_per_ok_request"]["api"] == 1000.0


def test_timeline_text_is_compact():
    timeline = [{"t": i * 0.5, "queued": i, "unacked": 0, "unfinished": -1} for i in range(8)]
    lines = report.timeline_text(timeline, per_line=6)
    assert len(lines) == 2
    assert "?" in lines[0]  # unreadable


# --------------------------------------------------------------------------- CLI options


def test_cli_options():
    cli = _cli()
    args = cli.parse_args(["--scenario", "burst", "--storage", "s3", "--worker-args", "-P solo"])
    assert args.systems == ["product"] and args.storage == "s3"
    assert args.out.name == "latest-burst.json"
    assert args.worker_args == "-P solo"
    assert cli.parse_args([]).out.name == "latest.json"
    assert cli.parse_args(["--scenario", "guesses"]).guess_rate == 50.0


@pytest.mark.parametrize(
    "argv",
    [
        ["--storage", "s3", "--storage-url", "file:///tmp/x"],
        ["--rate", "0"],
        ["--burst-seconds", "-1"],
        ["--systems", "nope"],
    ],
)
def test_cli_rejects(argv, capsys):
    with pytest.raises(SystemExit):
        _cli().parse_args(argv)
