"""api.web.chart: the models page's top-1 chart, drawn as SVG on the server."""

from __future__ import annotations

import datetime as dt
import re

from api.web.chart import Point, top1_chart

T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def test_one_dot_a_version_in_time_order_higher_is_better():
    points = [
        Point(3, T0 + dt.timedelta(days=2), 0.95),
        Point(1, T0, 0.90),
        Point(2, T0 + dt.timedelta(days=1), 0.93),
    ]
    svg = top1_chart(points)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    dots = [(float(x), float(y)) for x, y in re.findall(r'cx="([\d.]+)" cy="([\d.]+)"', svg)]
    assert len(dots) == 3
    xs, ys = zip(*dots, strict=True)
    assert list(xs) == sorted(xs)  # drawn oldest first, left to right
    assert ys[0] > ys[1] > ys[2]  # SVG's y grows downwards: better is higher up
    assert "v1: 90.00%" in svg and "v3: 95.00%" in svg


def test_no_figures_say_so_instead_of_an_empty_chart():
    assert "No version" in top1_chart([])
    assert "<svg" in top1_chart([Point(1, T0, 1.0)])
