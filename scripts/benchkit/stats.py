"""The statistics every benchmark script uses: percentiles, medians, a least-squares line.

numpy and `statistics` do the arithmetic; this module only adds what the reports need on
top (NaN for no data instead of an exception, names like "p99"). Pure: no I/O, no clock.
Unit-tested in tests/unit/test_bench_stats.py.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def percentile(values: Iterable[float], p: float) -> float:
    """The p-th percentile (0..100), numpy's linear interpolation; NaN for no values."""
    if not 0 <= p <= 100:
        raise ValueError(f"percentile must be in 0..100, got {p}")
    data = np.fromiter((float(v) for v in values), dtype=float)
    return float(np.percentile(data, p)) if data.size else math.nan


def percentiles(values: Iterable[float], ps: Sequence[float] = (50, 90, 99)) -> dict[str, float]:
    """{"p50": ..., "p90": ..., "p99": ...} of the values (NaN each if none)."""
    data = [float(v) for v in values]
    return {f"p{p:g}": percentile(data, p) for p in ps}


def median(values: Iterable[float | None]) -> float:
    """The median of the values that are not None or NaN; NaN if there are none."""
    kept = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    return float(statistics.median(kept)) if kept else math.nan


def median_min_max(runs: Sequence[Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """Per key of the runs: median (to 0.01), min and max over the runs that have it."""
    out = {}
    for key in sorted({k for run in runs for k in run}):
        values = [float(run[key]) for run in runs if key in run]
        out[key] = {
            "median": round(statistics.median(values), 2),
            "min": min(values),
            "max": max(values),
        }
    return out


@dataclass(frozen=True)
class Fit:
    intercept: float  # y at x = 0 (seconds at N = 0)
    slope: float  # y per unit of x (seconds per doodle)
    r2: float  # 1 when the points lie on the line (NaN with fewer than 3 points or no spread)

    @property
    def per_1000(self) -> float:
        return self.slope * 1000


def linear_fit(xs: Sequence[float], ys: Sequence[float]) -> Fit:
    """Ordinary least squares y = a + b x; ValueError for fewer than two points or one x."""
    if len(xs) != len(ys) or len(xs) < 2:
        raise ValueError("need at least two (x, y) points")
    if len(set(xs)) < 2:
        raise ValueError("the x values must not all be equal")
    slope, intercept = statistics.linear_regression(xs, ys)
    # With an intercept, R2 of the least-squares line is the squared correlation.
    undefined = len(xs) < 3 or len(set(ys)) < 2
    r2 = math.nan if undefined else statistics.correlation(xs, ys) ** 2
    return Fit(intercept, slope, r2)


def growth_exponent(xs: Sequence[float], ys: Sequence[float]) -> float:
    """k in y ~ x^k between the smallest and the largest x (NaN if a y is not positive)."""
    if len(xs) != len(ys) or len(xs) < 2:
        raise ValueError("need at least two (x, y) points")
    lo = min(range(len(xs)), key=lambda i: xs[i])
    hi = max(range(len(xs)), key=lambda i: xs[i])
    if xs[lo] <= 0 or xs[lo] == xs[hi] or ys[lo] <= 0 or ys[hi] <= 0:
        return math.nan
    return math.log(ys[hi] / ys[lo]) / math.log(xs[hi] / xs[lo])
