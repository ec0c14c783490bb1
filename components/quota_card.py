"""A quota card and the quota trend chart. The card shows the quota's name, used of limit, a progress
bar and a badge coloured by level (ok, warning from the threshold, danger at the limit), and how the
figure was measured; `.update(usage)` changes it in place. It carries the classes `nimbus-quota-<name>`
and `quota-level-<level>`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nicegui import ui

from data.models import QuotaSnapshot
from engine.services.quotas import QuotaUsage

LEVELS = {  # level -> (badge text, Quasar colour)
    "ok": ("OK", "positive"),
    "warning": ("Warning", "warning"),
    "danger": ("Limit reached", "negative"),
}


def amount(value: float, unit: str) -> str:
    """A figure in its unit, for people: counts with separators, bytes in KiB/MiB/GiB."""
    if unit == "bytes":
        for name in ("bytes", "KiB", "MiB", "GiB", "TiB"):
            if value < 1024 or name == "TiB":
                return f"{value:,.0f} {name}" if name == "bytes" else f"{value:,.1f} {name}"
            value /= 1024
    if unit == "MB":
        return f"{value:,.0f} MB"
    return f"{value:,.0f}"


class QuotaCard:
    def __init__(self, usage: QuotaUsage) -> None:
        self.name = usage.name
        self.level = ""
        with ui.card().classes(f"nimbus-quota nimbus-quota-{usage.name} gap-2 p-4") as card:
            self.card = card.mark(f"quota-{usage.name}")
            with ui.row().classes("w-full items-center justify-between no-wrap"):
                ui.label(usage.label).classes(
                    "text-sm uppercase tracking-wide text-gray-500 dark:text-gray-400"
                )
                self.badge = ui.badge("").mark(f"quota-{usage.name}-level")
            self.value = ui.label("").classes("text-2xl font-semibold").mark(f"quota-{usage.name}-value")
            self.bar = ui.linear_progress(value=0.0, show_value=False).props("rounded size=10px")
            with ui.row().classes("w-full items-center justify-between no-wrap"):
                self.percent = ui.label("").classes("text-sm").mark(f"quota-{usage.name}-percent")
                self.enforced = ui.label("").classes("text-xs text-gray-500 dark:text-gray-400")
            self.caption = ui.label("").classes("text-xs text-gray-500 dark:text-gray-400")
        self.update(usage)

    def update(self, usage: QuotaUsage) -> None:
        self.value.set_text(f"{amount(usage.used, usage.unit)} of {amount(usage.limit, usage.unit)}")
        self.percent.set_text(f"{usage.percent:.1f}%")
        self.bar.set_value(min(1.0, usage.percent / 100))
        text, colour = LEVELS.get(usage.level, LEVELS["ok"])
        self.badge.set_text(text)
        self.badge.props(f"color={colour}")
        self.bar.props(f"color={colour}")
        if usage.level != self.level:
            if self.level:
                self.card.classes(remove=f"quota-level-{self.level}")
            self.card.classes(f"quota-level-{usage.level}")
            self.level = usage.level
        self.enforced.set_text(f"enforced: {usage.enforced}" if usage.enforced else "shown, not enforced")
        self.caption.set_text(usage.method if usage.method != "exact" else "")


# --- the trend chart --------------------------------------------------------------------------------

PALETTE = ("#3b82f6", "#22c55e", "#f59e0b", "#ef4444", "#a855f7", "#14b8a6", "#f97316", "#64748b", "#ec4899")
GRID = "rgba(148, 163, 184, 0.18)"


def history_figure(
    snapshots: Sequence[QuotaSnapshot], labels: dict[str, str], threshold: float, *, height: int = 300
) -> dict[str, Any]:
    """One line per quota: its usage as a share of its limit at each snapshot, with the warning
    threshold and the limit drawn across. A Plotly figure dict (update the element with it)."""
    x = [s.taken_at.astimezone().strftime("%Y-%m-%dT%H:%M:%S") for s in snapshots]
    data = []
    for i, (name, label) in enumerate(labels.items()):
        y = []
        for s in snapshots:
            usage = s.usage.get(name)
            limit = float(usage["limit"]) if usage else 0.0
            y.append(round(100.0 * float(usage["used"]) / limit, 2) if usage and limit > 0 else None)
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": label,
                "x": x,
                "y": y,
                "line": {"color": PALETTE[i % len(PALETTE)], "width": 2},
                "marker": {"size": 4},
                "connectgaps": False,
            }
        )
    axis = {"gridcolor": GRID, "zeroline": False, "color": "#94a3b8", "automargin": True}
    line = {"type": "line", "xref": "paper", "x0": 0, "x1": 1}
    return {
        "data": data,
        "layout": {
            "height": height,
            "margin": {"l": 8, "r": 8, "t": 8, "b": 8},
            "paper_bgcolor": "rgba(0,0,0,0)",
            "plot_bgcolor": "rgba(0,0,0,0)",
            "font": {"size": 12, "color": "#94a3b8"},
            "legend": {"orientation": "h", "x": 0, "y": 1.15},
            "xaxis": {**axis, "type": "date", "hoverformat": "%Y-%m-%d %H:%M"},
            "yaxis": {**axis, "title": {"text": "% of limit"}, "rangemode": "tozero"},
            "shapes": [
                {
                    **line,
                    "y0": threshold,
                    "y1": threshold,
                    "line": {"color": "#f59e0b", "dash": "dash", "width": 1},
                },
                {**line, "y0": 100, "y1": 100, "line": {"color": "#ef4444", "dash": "dot", "width": 1}},
            ],
            "uirevision": "keep",
        },
        "config": {"displayModeBar": False, "responsive": True},
    }
