"""Chart geometry: pure functions from numbers to shapes."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from collector.dashboard import charts


def test_nice_max_rounds_up_to_1_2_5() -> None:
    cases = {0: 1.0, 0.3: 0.5, 1: 1.0, 3: 5.0, 7: 10.0, 11: 20.0, 16: 20.0, 51: 100.0, 999: 1000.0}
    assert {v: charts.nice_max(v) for v in cases} == cases


def test_rates_skip_a_counter_reset_and_deltas_restart_from_zero() -> None:
    samples = [(0.0, 0.0), (10.0, 500.0), (20.0, 1500.0), (30.0, 40.0), (40.0, 240.0)]
    assert charts.rates(samples) == [(10.0, 50.0), (20.0, 100.0), (40.0, 20.0)]
    assert charts.deltas(samples) == [(10.0, 500.0), (20.0, 1000.0), (30.0, 40.0), (40.0, 200.0)]


def test_stacked_columns_stack_severities_to_the_bucket_total() -> None:
    chart = charts.stacked_columns({1: [2, 0, 1], 3: [1, 0, 4]}, start=0.0, bucket=3600.0, width=300, height=100)
    assert chart.top == 5.0
    by_x: dict[float, float] = {}
    for s in chart.segments:
        by_x[s.x] = by_x.get(s.x, 0.0) + s.height
    assert by_x == {1.0: 60.0, 201.0: 100.0}  # 3/5 and 5/5 of the height; the empty bucket draws nothing
    assert [(name, n) for name, _, n in chart.legend] == [("high", 3), ("low", 5)]
    bottom = next(s for s in chart.segments if s.x == 1.0 and s.colour == charts.severity_colour(1))
    assert bottom.y + bottom.height == 100.0  # most severe at the bottom


@given(st.lists(st.tuples(st.floats(0, 1e10), st.floats(0, 1e12)), min_size=1, max_size=50))
def test_line_chart_stays_in_its_box_and_its_path_is_only_numbers(points: list[tuple[float, float]]) -> None:
    points.sort()
    chart = charts.line_chart(points, width=200, height=50)
    assert re.fullmatch(r"M-?[0-9.]+ -?[0-9.]+( L-?[0-9.]+ -?[0-9.]+)*", chart.path)
    for x, y in re.findall(r"(-?[0-9.]+) (-?[0-9.]+)", chart.path):
        assert -0.05 <= float(x) <= 200.05 and -0.05 <= float(y) <= 50.05
