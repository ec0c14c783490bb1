"""A Gantt timeline (Plotly figure dict) of an execution's state runs: one bar per run from its start to
its end (or to now while it runs), coloured by status, in the order the runs began. Runs inside a
Parallel branch or a Map item are indented under their parent and say which branch/item they ran for."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from data.models import WorkflowStateRun

STATUS_COLOURS: dict[str, str] = {
    "running": "#3b82f6",
    "retrying": "#f59e0b",
    "succeeded": "#22c55e",
    "failed": "#ef4444",
    "caught": "#f97316",
    "paused": "#a855f7",
    "cancelled": "#94a3b8",
}
GRID = "rgba(148, 163, 184, 0.18)"

Figure = dict[str, Any]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def run_label(run: WorkflowStateRun, depth: int) -> str:
    where = ""
    if run.branch is not None:
        where = f" [branch {run.branch}]"
    elif run.item is not None:
        where = f" [item {run.item}]"
    attempt = f" (attempt {run.attempt})" if run.attempt > 1 else ""
    return f"{'  ' * depth}{'↳ ' if depth else ''}{run.seq}. {run.state_name}{where}{attempt}"


def _depths(runs: Sequence[WorkflowStateRun]) -> dict[str, int]:
    by_id = {r.id: r for r in runs}
    depths: dict[str, int] = {}
    for run in runs:
        depth, parent, seen = 0, run.parent_id, set()
        while parent and parent in by_id and parent not in seen:
            seen.add(parent)
            depth += 1
            parent = by_id[parent].parent_id
        depths[run.id] = depth
    return depths


def gantt_figure(
    runs: Sequence[WorkflowStateRun], *, now: datetime | None = None, text_colour: str = "#94a3b8"
) -> Figure:
    """The figure for `runs` (any order; drawn by seq, first at the top)."""
    now = _aware(now or datetime.now(UTC))
    ordered = sorted(runs, key=lambda r: r.seq)
    depths = _depths(ordered)
    labels = [run_label(r, depths[r.id]) for r in ordered]
    traces: dict[str, dict[str, Any]] = {}
    for run, label in zip(ordered, labels, strict=True):
        start = _aware(run.started_at)
        end = _aware(run.finished_at) if run.finished_at else now
        duration_ms = max((end - start).total_seconds() * 1000, 1.0)
        trace = traces.setdefault(
            run.status,
            {
                "type": "bar",
                "orientation": "h",
                "name": run.status,
                "marker": {"color": STATUS_COLOURS.get(run.status, "#64748b")},
                "x": [],
                "y": [],
                "base": [],
                "customdata": [],
                "hovertemplate": "%{y}<br>%{customdata} ms<extra>%{fullData.name}</extra>",
            },
        )
        trace["x"].append(duration_ms)
        trace["y"].append(label)
        trace["base"].append(start.astimezone().strftime("%Y-%m-%dT%H:%M:%S.%f"))
        trace["customdata"].append(round(duration_ms, 1))
    axis = {"gridcolor": GRID, "zeroline": False, "color": text_colour, "automargin": True}
    return {
        "data": list(traces.values()),
        "layout": {
            "height": max(160, 28 * len(ordered) + 70),
            "margin": {"l": 8, "r": 8, "t": 8, "b": 8},
            "paper_bgcolor": "rgba(0,0,0,0)",
            "plot_bgcolor": "rgba(0,0,0,0)",
            "font": {"size": 12, "color": text_colour},
            "barmode": "overlay",
            "showlegend": True,
            "legend": {"orientation": "h", "x": 0, "y": 1.08},
            "xaxis": {**axis, "type": "date", "tickformat": "%H:%M:%S.%L"},
            "yaxis": {
                **axis,
                "type": "category",
                "categoryorder": "array",
                "categoryarray": list(reversed(labels)),
            },
            "uirevision": "keep",
        },
        "config": {"displayModeBar": False, "responsive": True},
    }
