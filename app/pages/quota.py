"""Quota: a card per quota (used of limit, percentage, progress bar; warning colour from the threshold,
danger at the limit), live as functions, invocations and settings change; a trend chart of every quota's
share of its limit from the periodic usage snapshots; admins change the limits and the threshold."""

from __future__ import annotations

from typing import Any

from nicegui import ui

from components.feedback import Failed, attempt
from components.form_errors import clear_errors, show_error, whole
from components.frame import PageContext, console_page
from components.live import live
from components.quota_card import QuotaCard, history_figure
from engine.events import Event, FunctionChanged, MetricsUpdated, QuotaChanged, SettingChanged
from engine.services.quotas import QuotaReport
from engine.services.setting_specs import lookup

RANGES = {24: "Last 24 hours", 24 * 7: "Last 7 days", 24 * 30: "Last 30 days"}


class QuotaPage:
    def __init__(self, ctx: PageContext) -> None:
        self.ctx = ctx
        self.service = ctx.platform.quotas
        self.admin = ctx.principal.can("admin")
        self.cards: dict[str, QuotaCard] = {}
        self.hours = 24 * 7
        self.report: QuotaReport | None = None

    async def build(self) -> None:
        report = await self.service.report(self.ctx.principal)
        self.report = report
        with ui.row().classes("w-full items-center gap-3"):
            self.summary = ui.label("").classes("text-sm text-gray-500").mark("quota-summary")
            ui.space()
            if self.admin:
                ui.button("Edit limits", icon="tune", on_click=self.edit).props("outline").mark("quota-edit")
        grid = "w-full grid grid-cols-1 md:grid-cols-2 xl:grid-cols-3 gap-3"
        with ui.element("div").classes(grid).mark("quota-cards"):
            for usage in report.quotas:
                self.cards[usage.name] = QuotaCard(usage)
        with ui.card().classes("w-full p-2 gap-1"):
            with ui.row().classes("w-full items-center px-2"):
                ui.label("Usage trend (% of limit)").classes("text-sm font-medium")
                ui.space()
                ui.select(RANGES, value=self.hours, on_change=self._range_changed).props("dense").mark(
                    "quota-range"
                )
            self.empty_chart = ui.label("").classes("text-sm text-gray-500 px-2").mark("quota-chart-empty")
            self.chart = ui.plotly(history_figure([], {}, 80)).classes("w-full").mark("quota-chart")
        self._show_summary(report)
        await self.refresh_chart()

    def _show_summary(self, report: QuotaReport) -> None:
        warnings = sum(q.level == "warning" for q in report.quotas)
        reached = sum(q.level == "danger" for q in report.quotas)
        parts = [f"Warning from {report.warning_threshold}% of a limit"]
        if reached:
            parts.append(f"{reached} at the limit")
        if warnings:
            parts.append(f"{warnings} near it")
        self.summary.set_text(" · ".join(parts))

    async def refresh(self) -> None:
        report = await attempt(self.service.report(self.ctx.principal), notify=False)
        if isinstance(report, Failed):
            return
        self.report = report
        for usage in report.quotas:
            card = self.cards.get(usage.name)
            if card is not None:
                card.update(usage)
        self._show_summary(report)

    async def refresh_chart(self) -> None:
        snapshots = await attempt(self.service.history(self.ctx.principal, self.hours), notify=False)
        if isinstance(snapshots, Failed) or self.report is None:
            return
        labels = {q.name: q.label for q in self.report.quotas}
        self.chart.figure = history_figure(snapshots, labels, self.report.warning_threshold)
        self.chart.update()
        self.empty_chart.set_text("" if snapshots else "No usage snapshots yet: one is taken every hour.")

    async def _range_changed(self, event: Any) -> None:
        self.hours = int(event.value)
        await self.refresh_chart()

    async def on_events(self, events: list[Event]) -> None:
        await self.refresh()
        if any(isinstance(e, QuotaChanged) for e in events):
            await self.refresh_chart()

    # --- editing the limits -----------------------------------------------------------------------

    async def edit(self) -> None:
        limits = self.service.limits()
        labels = {q.field: q.limit_key for q in self.service.quotas if q.editable}
        with ui.dialog() as dialog, ui.card().classes("min-w-[420px]").mark("quota-dialog"):
            ui.label("Quota limits").classes("text-lg font-semibold")
            inputs: dict[str, Any] = {}
            with ui.grid(columns=2).classes("w-full gap-2"):
                for field, value in limits.items():
                    spec = lookup(labels.get(field, "quota.warning_threshold"))
                    label = spec.label if spec else field
                    unit = f" ({spec.unit})" if spec and spec.unit else ""
                    inputs[field] = ui.number(f"{label}{unit}", value=value, format="%d").mark(
                        f"limit-{field}"
                    )
            problem = ui.label("").classes("text-negative text-sm").mark("quota-dialog-error")
            problem.set_visibility(False)
            with ui.row().classes("w-full justify-end gap-2"):
                ui.button("Cancel", on_click=dialog.close).props("flat").mark("quota-cancel")
                ui.button("Save", on_click=lambda: self._save(dialog, limits, inputs, problem)).props(
                    "color=primary"
                ).mark("quota-save")
        dialog.open()

    async def _save(
        self, dialog: ui.dialog, limits: dict[str, int], inputs: dict[str, Any], problem: ui.label
    ) -> None:
        clear_errors(inputs, problem)
        changes: dict[str, int] = {}
        for field, box in inputs.items():
            value = whole(box.value, field)
            if isinstance(value, Failed):
                show_error(value, inputs, problem)
                return
            if value != limits[field]:
                changes[field] = value
        if not changes:
            dialog.close()
            ui.notify("Nothing changed")
            return
        result = await attempt(self.service.update(self.ctx.principal, changes), notify=False)
        if isinstance(result, Failed):
            show_error(result, inputs, problem)
            return
        dialog.close()
        ui.notify("Quota limits saved", type="positive")
        await self.refresh()
        await self.refresh_chart()


@console_page("/quota", "Quota")
async def quota_page(ctx: PageContext) -> None:
    page = QuotaPage(ctx)
    await page.build()
    live(
        ctx.client,
        ctx.platform.bus,
        QuotaChanged,
        FunctionChanged,
        MetricsUpdated,
        SettingChanged,
        handler=page.on_events,
        max_rate=1.0,
    )
