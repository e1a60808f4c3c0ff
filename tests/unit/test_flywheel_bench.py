"""The pure helpers of scripts/flywheel_bench.py and of the benchkit modules it drives
(scripts/ is not a package)."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

from tests.fixtures.benchkit import load_benchkit

BENCH_PATH = Path(__file__).resolve().parents[2] / "scripts" / "flywheel_bench.py"


def _load():
    spec = importlib.util.spec_from_file_location("doodle_flywheel_bench_script", BENCH_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


load_benchkit()
bench = _load()

from benchkit import flywheel_data, flywheel_report, stats  # noqa: E402
from benchkit.timers import Timers, instrumented  # noqa: E402

# --------------------------------------------------------------------------- parse_sizes


def test_parse_sizes_sorts_dedups_and_reads_k():
    assert bench.parse_sizes("10000, 2_500,5k,2500") == [2500, 5000, 10000]
    assert bench.parse_sizes("1.5k") == [1500]


@pytest.mark.parametrize("text", ["", " , ", "abc", "0", "-5"])
def test_parse_sizes_refuses_nonsense(text):
    with pytest.raises(ValueError):
        bench.parse_sizes(text)


# --------------------------------------------------------------------------- deal_words


def test_deal_words_round_robin_then_copies():
    plan = flywheel_data.deal_words(["a", "b"], [2, 3], 9)
    assert plan == [
        ("a", 0, 0),
        ("b", 0, 0),
        ("a", 1, 0),
        ("b", 1, 0),
        ("a", 0, 1),  # a's two drawings used: copies start
        ("b", 2, 0),
        ("a", 1, 1),
        ("b", 0, 1),
        ("a", 0, 2),
    ]


def test_deal_words_smaller_sizes_are_prefixes():
    big = flywheel_data.deal_words(["a", "b", "c"], [25, 25, 3], 1000)
    assert flywheel_data.deal_words(["a", "b", "c"], [25, 25, 3], 250) == big[:250]


def test_deal_words_balances_words():
    plan = flywheel_data.deal_words(list("abcde"), [25] * 5, 10_000)
    counts = {w: sum(1 for x, _, _ in plan if x == w) for w in "abcde"}
    assert set(counts.values()) == {2000}


@pytest.mark.parametrize(("words", "per_word"), [([], []), (["a"], [0]), (["a", "b"], [1])])
def test_deal_words_refuses_bad_input(words, per_word):
    with pytest.raises(ValueError):
        flywheel_data.deal_words(words, per_word, 3)


# --------------------------------------------------------------------------- fits


def test_describe_growth_names_the_shape():
    fit = stats.Fit(intercept=1.0, slope=0.002, r2=1.0)
    assert flywheel_report.describe_growth(fit, 1.0).startswith("linear: 1.0 s + 2.00 s per 1,000")
    assert flywheel_report.describe_growth(fit, 0.05).startswith("flat")
    assert flywheel_report.describe_growth(fit, 0.5).startswith("sublinear")
    assert flywheel_report.describe_growth(fit, 1.6).startswith("superlinear")
    assert flywheel_report.describe_growth(fit, math.nan) == "n/a"


def test_fit_stages_over_results():
    results = [
        {"n": 1000, "timings": {"relabel_s": 2.0, "finetune_s": 5.0}},
        {"n": 2000, "timings": {"relabel_s": 3.0, "finetune_s": 5.0}},
        {"n": 4000, "timings": {"relabel_s": 5.0, "finetune_s": 5.0}},
    ]
    fits = flywheel_report.fit_stages(results, stages=("relabel_s", "finetune_s", "evaluate_s"))
    assert fits["relabel_s"]["s_per_1000"] == pytest.approx(1.0)
    assert fits["relabel_s"]["intercept_s"] == pytest.approx(1.0)
    assert fits["relabel_s"]["r2"] == pytest.approx(1.0)
    assert fits["finetune_s"]["s_per_1000"] == pytest.approx(0.0)
    assert fits["finetune_s"]["exponent"] == pytest.approx(0.0)
    assert fits["finetune_s"]["r2"] is None  # no spread in y
    assert "evaluate_s" not in fits  # no data


def test_fit_stages_needs_two_sizes():
    assert flywheel_report.fit_stages([{"n": 10, "timings": {"relabel_s": 1.0}}]) == {}


# --------------------------------------------------------------------------- timers


class _Owner:
    @staticmethod
    def work(x):
        return x * 2

    @staticmethod
    def fail():
        raise RuntimeError("boom")


def test_instrumented_times_and_restores():
    timers = Timers()
    original = vars(_Owner)["work"]
    with instrumented(timers, [(_Owner, "work", "w"), (_Owner, "fail", "f")]):
        assert _Owner.work(21) == 42
        assert _Owner.work(1) == 2
        with pytest.raises(RuntimeError):
            _Owner.fail()
    assert vars(_Owner)["work"] is original  # the staticmethod itself is back
    assert _Owner().work(2) == 4
    report = timers.as_dict()
    assert report["w"]["calls"] == 2
    assert report["f"]["calls"] == 1  # timed even when it raises
    assert report["w"]["seconds"] >= 0 and report["w"]["cpu_seconds"] >= 0


def test_instrumented_restores_after_an_error_inside():
    timers = Timers()
    original = vars(_Owner)["work"]
    with pytest.raises(KeyError), instrumented(timers, [(_Owner, "work", "w")]):
        raise KeyError("x")
    assert vars(_Owner)["work"] is original


class _Child(_Owner):
    pass


def test_instrumented_inherited_attribute_is_removed_again():
    timers = Timers()
    with instrumented(timers, [(_Child, "work", "w")]):
        assert "work" in vars(_Child)
        assert _Child.work(3) == 6
    assert "work" not in vars(_Child)
    assert timers.as_dict()["w"]["calls"] == 1
