"""Plotly figure dicts for metric series: invocations and errors per step (stacked bars) and latency
percentiles (lines). Build a figure once, then `update_*` it in place and call `plot.update()`: only the
data changes, so a chart that stays on a wall for days does not grow. Colours read on dark and light."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine.services.metrics import SeriesPoint

OK_COLOUR = "#3b82f6"
ERROR_COLOUR = "#ef4444"
P50_COLOUR = "#22c55e"
P95_COLOUR = "#f59e0b"
P99_COLOUR = "#ef4444"
GRID = "rgba(148, 163, 184, 0.18)"

Figure = dict[str, Any]


def _layout(*, height: int | None, font_size: int, y_title: str, text_colour: str) -> dict[str, Any]:
    axis = {"gridcolor": GRID, "zeroline": False, "color": text_colour, "automargin": True}
    return {
        **({"height": height} if height else {"autosize": True}),
        "margin": {"l": 8, "r": 8, "t": 8, "b": 8},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": {"size": font_size, "color": text_colour},
        "showlegend": True,
        "legend": {
            "orientation": "h",
            "x": 0,
            "y": 1.12,
            "font": {"size": font_size},
            "traceorder": "normal",
        },
        "xaxis": {**axis, "type": "date", "tickformat": "%H:%M", "hoverformat": "%Y-%m-%d %H:%M"},
        "yaxis": {**axis, "title": {"text": y_title}, "rangemode": "tozero"},
        "bargap": 0.15,
        "uirevision": "keep",  # keep the user's zoom across in-place updates
    }


def _config() -> dict[str, Any]:
    return {"displayModeBar": False, "responsive": True}


def _x(points: Sequence[SeriesPoint]) -> list[str]:
    """Times in the server's zone, like every other time the console shows (plotly takes them as is)."""
    return [p.at.astimezone().strftime("%Y-%m-%dT%H:%M:%S") for p in points]


def invocations_figure(
    points: Sequence[SeriesPoint],
    *,
    height: int | None = 240,
    font_size: int = 12,
    text_colour: str = "#94a3b8",
) -> Figure:
    """Stacked bars: successful and failed invocations per step. `height=None` fills the element."""
    figure: Figure = {
        "data": [
            {"type": "bar", "name": "ok", "marker": {"color": OK_COLOUR}, "x": [], "y": []},
            {"type": "bar", "name": "errors", "marker": {"color": ERROR_COLOUR}, "x": [], "y": []},
        ],
        "layout": {
            **_layout(height=height, font_size=font_size, y_title="invocations", text_colour=text_colour),
            "barmode": "stack",
        },
        "config": _config(),
    }
    update_invocations(figure, points)
    return figure


def update_invocations(figure: Figure, points: Sequence[SeriesPoint]) -> None:
    x = _x(points)
    ok, errors = figure["data"]
    ok["x"], ok["y"] = x, [p.invocations - p.errors for p in points]
    errors["x"], errors["y"] = x, [p.errors for p in points]


def latency_figure(
    points: Sequence[SeriesPoint], *, height: int = 240, font_size: int = 12, text_colour: str = "#94a3b8"
) -> Figure:
    """p50 / p95 / p99 lines in milliseconds; gaps where nothing ran."""
    lines = [("p50", P50_COLOUR), ("p95", P95_COLOUR), ("p99", P99_COLOUR)]
    figure: Figure = {
        "data": [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": name,
                "line": {"color": colour, "width": 2, "shape": "spline"},
                "marker": {"size": 4},
                "connectgaps": False,
                "x": [],
                "y": [],
            }
            for name, colour in lines
        ],
        "layout": _layout(height=height, font_size=font_size, y_title="ms", text_colour=text_colour),
        "config": _config(),
    }
    update_latency(figure, points)
    return figure


def update_latency(figure: Figure, points: Sequence[SeriesPoint]) -> None:
    x = _x(points)
    p50, p95, p99 = figure["data"]
    p50["x"], p50["y"] = x, [_ms(p.p50_ms) for p in points]
    p95["x"], p95["y"] = x, [_ms(p.p95_ms) for p in points]
    p99["x"], p99["y"] = x, [_ms(p.p99_ms) for p in points]


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
