"""Chart geometry for the templates' inline SVG: pure functions from numbers to shapes.

Nothing here writes markup: it returns coordinates, labels and path strings made only of numbers and the
letters M/L, and the templates draw them with jinja2 autoescaping on. No JavaScript, no external library:
a chart is readable with scripts off and prints as it looks.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

# Severity colours (Suricata priority 1 = highest), colour-blind-safe palette (Okabe-Ito).
SEVERITY_COLOURS: Final = {1: "#d55e00", 2: "#e69f00", 3: "#0072b2", 4: "#999999"}
SEVERITY_NAMES: Final = {1: "high", 2: "medium", 3: "low", 4: "info"}


def severity_colour(severity: int) -> str:
    """Colour of a severity (4 and above share the "info" grey)."""
    return SEVERITY_COLOURS[min(max(severity, 1), 4)]


def severity_name(severity: int) -> str:
    """Word for a severity."""
    return SEVERITY_NAMES[min(max(severity, 1), 4)]


def nice_max(value: float) -> float:
    """The next "round" number at or above `value` (1, 2, 5 x 10^n): the top of an axis."""
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1.0, 2.0, 5.0, 10.0):
        top = step * 10.0**exponent
        if top >= value:
            return top
    return 10.0 ** (exponent + 1)


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: float
    width: float
    y: float


@dataclass(frozen=True, slots=True)
class BarChart:
    """Horizontal bars: one row per label, widths in pixels out of `plot_width`."""

    bars: tuple[Bar, ...]
    plot_width: float
    height: float
    row: float


def bar_chart(items: Sequence[tuple[str, float]], plot_width: float = 260.0, row: float = 22.0) -> BarChart:
    """Horizontal bars for (label, value) pairs, scaled to the largest value."""
    top = max((v for _, v in items), default=0.0) or 1.0
    bars = tuple(Bar(label, value, plot_width * value / top, i * row) for i, (label, value) in enumerate(items))
    return BarChart(bars, plot_width, max(row, len(bars) * row), row)


@dataclass(frozen=True, slots=True)
class Segment:
    x: float
    y: float
    width: float
    height: float
    colour: str
    title: str


@dataclass(frozen=True, slots=True)
class StackedColumns:
    """Stacked columns over time (alerts per severity per bucket) with axis labels."""

    segments: tuple[Segment, ...]
    width: float
    height: float
    top: float
    x_labels: tuple[tuple[float, str], ...]
    legend: tuple[tuple[str, str, int], ...]


def stacked_columns(
    series: dict[int, list[int]],
    start: float,
    bucket: float,
    width: float = 640.0,
    height: float = 160.0,
    labels: int = 6,
) -> StackedColumns:
    """Columns of alert counts per bucket, stacked by severity (most severe at the bottom)."""
    count = max((len(v) for v in series.values()), default=0)
    totals = [sum(series[s][i] for s in series) for i in range(count)]
    top = nice_max(max(totals, default=0))
    step = width / count if count else width
    segments: list[Segment] = []
    for i in range(count):
        base = height
        for severity in sorted(series):
            n = series[severity][i]
            if not n:
                continue
            h = height * n / top
            base -= h
            when = _stamp(start + i * bucket, bucket)
            title = f"{when}: {n} {severity_name(severity)}"
            segments.append(Segment(i * step + 1, base, max(step - 2, 1), h, severity_colour(severity), title))
    every = max(1, count // labels) if count else 1
    x_labels = tuple((i * step, _stamp(start + i * bucket, bucket)) for i in range(0, count, every))
    legend = tuple((severity_name(s), severity_colour(s), sum(series[s])) for s in sorted(series) if sum(series[s]))
    return StackedColumns(tuple(segments), width, height, top, x_labels, legend)


@dataclass(frozen=True, slots=True)
class LineChart:
    """A single series as an SVG path, with its axis extremes."""

    path: str
    width: float
    height: float
    top: float
    last: float | None
    start_label: str
    end_label: str
    points: int


def line_chart(points: Sequence[tuple[float, float]], width: float = 260.0, height: float = 60.0) -> LineChart:
    """A line through (time, value) points, time on x, value scaled to a round axis top."""
    if not points:
        return LineChart("", width, height, 0.0, None, "", "", 0)
    t0, t1 = points[0][0], points[-1][0]
    span = (t1 - t0) or 1.0
    top = nice_max(max(v for _, v in points))
    parts = []
    for i, (t, v) in enumerate(points):
        x = width * (t - t0) / span if len(points) > 1 else width / 2
        y = height - height * v / top
        parts.append(f"{'M' if i == 0 else 'L'}{x:.1f} {y:.1f}")
    return LineChart(
        " ".join(parts), width, height, top, points[-1][1], _stamp(t0, span), _stamp(t1, span), len(points)
    )


def rates(samples: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Per-second rates from a cumulative counter's samples; a counter that went down (restart) is skipped."""
    out: list[tuple[float, float]] = []
    for (t0, v0), (t1, v1) in itertools.pairwise(samples):
        if t1 > t0 and v1 >= v0:
            out.append((t1, (v1 - v0) / (t1 - t0)))
    return out


def deltas(samples: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Increase of a cumulative counter between samples (a restart counts from zero)."""
    out: list[tuple[float, float]] = []
    for (_t0, v0), (t1, v1) in itertools.pairwise(samples):
        out.append((t1, v1 - v0 if v1 >= v0 else v1))
    return out


def _stamp(ts: float, span: float) -> str:
    fmt = "%H:%M" if span < 86400 else "%d %b %H:%M"
    return time.strftime(fmt, time.gmtime(ts))
