"""The statistics (benchkit.stats) and run summaries (benchkit.summaries) of the benchmark
scripts, and the bench's text table (scripts/benchkit; scripts/ is not a package)."""

from __future__ import annotations

import json
import math

import pytest

from tests.fixtures.benchkit import load_benchkit

load_benchkit()

from benchkit import inputs, load, report, stats, summaries  # noqa: E402  # noqa: E402

Sample = summaries.Sample


# --------------------------------------------------------------------------- percentile


def test_percentile_interpolates_linearly_like_numpy():
    np = pytest.importorskip("numpy")
    values = [13.0, 1.0, 7.5, 2.0, 99.0, 42.0, 3.0]
    for p in (0, 1, 10, 25, 50, 75, 90, 99, 100):
        assert stats.percentile(values, p) == pytest.approx(float(np.percentile(values, p)))


def test_percentile_edges():
    assert stats.percentile([5.0], 0) == 5.0
    assert stats.percentile([5.0], 99) == 5.0
    assert stats.percentile([1, 2], 50) == 1.5
    assert stats.percentile(range(1, 101), 100) == 100.0
    assert stats.percentile(range(1, 101), 0) == 1.0
    assert stats.percentile(iter([3, 1, 2]), 50) == 2.0  # any iterable, unsorted
    assert math.isnan(stats.percentile([], 50))


@pytest.mark.parametrize("p", [-1, 100.5])
def test_percentile_rejects_out_of_range(p):
    with pytest.raises(ValueError):
        stats.percentile([1.0, 2.0], p)


def test_p99_of_1000_is_near_the_top():
    values = list(range(1000))
    assert stats.percentile(values, 99) == pytest.approx(989.01)


# --------------------------------------------------------------------------- median


def test_median_odd_even_and_nan():
    assert stats.median([3, 1, 2]) == 2.0
    assert stats.median([4, 1, 3, 2]) == 2.5
    assert stats.median([1.0, math.nan, 3.0]) == 2.0  # NaN runs are ignored
    assert math.isnan(stats.median([]))
    assert math.isnan(stats.median([math.nan]))


# --------------------------------------------------------------------------- fits and spreads


def test_linear_fit_exact_line():
    fit = stats.linear_fit([1000, 2000, 4000], [3.0, 5.0, 9.0])
    assert fit.intercept == pytest.approx(1.0)
    assert fit.per_1000 == pytest.approx(2.0)
    assert fit.r2 == pytest.approx(1.0)


def test_linear_fit_two_points_has_no_r2():
    fit = stats.linear_fit([1, 2], [1, 3])
    assert fit.slope == pytest.approx(2.0)
    assert math.isnan(fit.r2)


def test_linear_fit_refuses_degenerate_x():
    with pytest.raises(ValueError):
        stats.linear_fit([5, 5, 5], [1, 2, 3])
    with pytest.raises(ValueError):
        stats.linear_fit([1], [1])


def test_growth_exponent():
    assert stats.growth_exponent([1000, 10_000], [2.0, 20.0]) == pytest.approx(1.0)
    assert stats.growth_exponent([1000, 4000, 2000], [3.0, 3.0, 9.0]) == pytest.approx(0.0)
    assert stats.growth_exponent([1, 4], [1, 16]) == pytest.approx(2.0)
    assert math.isnan(stats.growth_exponent([1, 2], [0.0, 1.0]))


def test_median_min_max_per_key():
    runs = [{"a": 3.0, "b": 1.0}, {"a": 1.0}, {"a": 2.0, "b": 2.0}]
    out = stats.median_min_max(runs)
    assert out["a"] == {"median": 2.0, "min": 1.0, "max": 3.0}
    assert out["b"] == {"median": 1.5, "min": 1.0, "max": 2.0}


# --------------------------------------------------------------------------- summarize


def test_summarize_counts_throughput_latency_errors_and_accuracy():
    samples = [
        Sample(10.0, True, correct=True),
        Sample(20.0, True, correct=False),
        Sample(30.0, True, correct=True),
        Sample(40.0, True, correct=True),
        Sample(1000.0, False, error="http_202"),
    ]
    s = summaries.summarize(samples, elapsed_s=2.0)
    assert s["requests"] == 5
    assert s["ok"] == 4
    assert s["errors"] == 1
    assert s["error_kinds"] == {"http_202": 1}
    assert s["throughput_rps"] == 2.0  # successful answers only
    assert s["p50_ms"] == 30.0  # errors count in latency (a timeout must show in p99)
    assert s["p99_ms"] == pytest.approx(stats.percentile([10, 20, 30, 40, 1000], 99))
    assert s["max_ms"] == 1000.0
    assert s["accuracy"] == 0.75  # over successful answers
    assert "stage_ms" not in s


def test_summarize_groups_error_kinds_and_handles_all_failed():
    samples = [
        Sample(5.0, False, error="ConnectionRefusedError"),
        Sample(6.0, False, error="ConnectionRefusedError"),
        Sample(7.0, False),
    ]
    s = summaries.summarize(samples, elapsed_s=1.0)
    assert s["error_kinds"] == {"ConnectionRefusedError": 2, "error": 1}
    assert s["throughput_rps"] == 0.0
    assert math.isnan(s["accuracy"])


def test_summarize_empty_and_bad_elapsed():
    s = summaries.summarize([], elapsed_s=1.0)
    assert s["requests"] == 0 and math.isnan(s["p99_ms"]) and math.isnan(s["accuracy"])
    with pytest.raises(ValueError):
        summaries.summarize([], elapsed_s=0.0)


def test_summarize_reports_the_products_stage_timings():
    samples = [
        Sample(50.0, True, True, timings={"queue_ms": q, "inference_ms": 1.0, "note": "x"})
        for q in (1.0, 2.0, 3.0)
    ]
    samples.append(Sample(60.0, False, timings={"queue_ms": 500.0}))  # failures are left out
    s = summaries.summarize(samples, elapsed_s=1.0)
    assert s["stage_ms"]["queue_ms"]["p50"] == 2.0
    assert s["stage_ms"]["inference_ms"]["p99"] == 1.0
    assert "note" not in s["stage_ms"]


def test_summary_is_json_serialisable():
    s = summaries.summarize([Sample(1.0, True, True)], elapsed_s=1.0)
    json.dumps(s)


# --------------------------------------------------------------------------- aggregate, ratios


def test_aggregate_takes_medians_key_by_key_and_recurses():
    runs = [
        {"throughput_rps": 100.0, "p99_ms": 50.0, "system": "a", "cpu": {"api": 1.0}},
        {"throughput_rps": 120.0, "p99_ms": 90.0, "system": "a", "cpu": {"api": 3.0}},
        {"throughput_rps": 110.0, "p99_ms": 60.0, "system": "a", "cpu": {"api": 2.0, "x": 5}},
    ]
    agg = summaries.aggregate(runs)
    assert agg["throughput_rps"] == 110.0
    assert agg["p99_ms"] == 60.0
    assert agg["cpu"] == {"api": 2.0, "x": 5.0}  # a key some runs lack: median of those with it
    assert "system" not in agg  # strings are not aggregated


def test_aggregate_ignores_booleans_and_empty():
    assert summaries.aggregate([]) == {}
    assert summaries.aggregate([{"flag": True}, {"flag": False}]) == {}


def test_ratios_product_over_baseline():
    product = {"throughput_rps": 300.0, "p50_ms": 40.0, "p90_ms": 80.0, "p99_ms": 120.0}
    baseline = {"throughput_rps": 150.0, "p50_ms": 80.0, "p90_ms": 80.0, "p99_ms": 240.0}
    r = summaries.ratios(product, baseline)
    assert r == {"throughput": 2.0, "p50": 0.5, "p90": 1.0, "p99": 0.5}


def test_ratios_nan_when_missing_or_zero():
    r = summaries.ratios({"throughput_rps": 1.0}, {"throughput_rps": 0.0})
    assert all(math.isnan(v) for v in r.values())


# --------------------------------------------------------------------------- table, inputs


def test_format_table_aligns_rows():
    table = report.format_table(
        [
            ("baseline", summaries.summarize([Sample(10.0, True, True)], 1.0)),
            ("product", {"throughput_rps": math.nan}),
        ]
    )
    lines = table.splitlines()
    assert len(lines) == 3
    assert len({len(line) for line in lines}) == 1
    assert "100.0%" in lines[1]
    assert lines[2].split()[1] == "-"


def test_request_bodies_carry_word_player_and_consent():
    bodies = inputs.request_bodies([("apple", [[[0, 255], [0, 10]]]), ("cup", [[[1, 2], [3, 4]]])])
    first = json.loads(bodies[0])
    assert first["word"] == "apple"
    assert first["drawing"] == [[[0, 255], [0, 10]]]
    assert first["consent"] == {"store": True, "train": True, "version": "v1"}
    assert first["player_id"] != json.loads(bodies[1])["player_id"]


def test_judge_reads_the_answer():
    done = json.dumps(
        {"status": "done", "prediction": {"label": "cup"}, "timings": {"queue_ms": 1.5}}
    ).encode()
    s = load.judge_recognition(200, done, "cup")
    assert s.ok and s.correct and s.timings == {"queue_ms": 1.5}
    assert not load.judge_recognition(200, done, "apple").correct
    assert load.judge_recognition(202, b"{}", "cup").error == "http_202"
    assert load.judge_recognition(200, b'{"status": "queued"}', "cup").error == "status_queued"
    assert load.judge_recognition(200, b"not json", "cup").error == "bad_body"
