"""DLQ: the dead-letter queue of async invocations that failed every attempt. Stats cards (live on
DlqChanged), a filtered list with cursor pagination, a detail drawer (input, every attempt's error), retry
and discard one or the selected messages, and purge the whole queue behind a typed confirmation.
`?status=` presets the status filter (default: pending) and `?id=` opens that message."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from nicegui import ui

from components.confirm import confirm
from components.cursor_pager import CursorPager
from components.dlq_drawer import DLQ_STATUS_COLOURS, DlqDrawer, last_error_type
from components.feedback import Failed, attempt
from components.frame import PageContext, console_page
from components.function_filter import function_filter, selected_function
from components.invocation_drawer import fmt_time
from components.invocation_table import TimeRangeInput
from components.live import live
from components.stats_card import StatsCard
from data.models import DeadLetter
from engine.errors import Invalid
from engine.events import DlqChanged, Event
from engine.services.dlq import STATUSES

STATUS_OPTIONS = {"": "Any status", **{s: s for s in STATUSES}}
PURGE_WORD = "purge"
PAGE_SIZE = 25


@dataclass(frozen=True, slots=True)
class DlqFilters:
    function_id: str | None = None
    status: str | None = None
    error_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    @property
    def any(self) -> bool:
        return any((self.function_id, self.status, self.error_type, self.since, self.until))


class DlqPage:
    def __init__(self, ctx: PageContext) -> None:
        self.ctx = ctx
        self.writer = ctx.principal.can("developer")
        self.filters = DlqFilters()
        self.pager = CursorPager(self.load)
        self.shown: dict[str, DeadLetter] = {}
        self.selected: set[str] = set()
        self.drawer = DlqDrawer(ctx, retry=self.retry_one, discard=self.discard_one)

    # --- building ---------------------------------------------------------------------------------

    def build_stats(self) -> None:
        with ui.row().classes("w-full gap-3").mark("dlq-stats"):
            self.total = StatsCard("Total", icon="inbox", mark="dlq-total")
            self.pending = StatsCard("Pending", icon="error_outline", mark="dlq-pending")
            self.retried = StatsCard("Retried", icon="task_alt", mark="dlq-retried")
            self.discarded = StatsCard("Discarded", icon="delete_sweep", mark="dlq-discarded")

    def build_actions(self) -> None:
        with ui.row().classes("w-full items-center gap-2").mark("dlq-actions"):
            self.selection = ui.label("").classes("text-sm text-gray-500").mark("dlq-selection")
            ui.space()
            if self.writer:
                self.retry_selected_button = (
                    ui.button("Retry selected", icon="replay", on_click=self.retry_selected)
                    .props("outline dense")
                    .mark("dlq-retry-selected")
                )
                self.discard_selected_button = (
                    ui.button("Discard selected", icon="delete_sweep", on_click=self.discard_selected)
                    .props("outline dense color=negative")
                    .mark("dlq-discard-selected")
                )
                ui.button("Purge queue", icon="delete_forever", on_click=self.purge).props(
                    "dense color=negative"
                ).mark("dlq-purge")

    def build_table(self) -> None:
        with ui.column().classes("w-full gap-2"):
            self.message = ui.label("").classes("text-negative").mark("dlq-message")
            self.message.set_visibility(False)
            with ui.element("q-markup-table").props("flat bordered dense").classes("w-full") as self.table:
                with ui.element("thead"), ui.element("tr"):
                    with ui.element("th").classes("w-8"):
                        self.select_all = ui.checkbox(on_change=self._select_all).props("dense")
                        self.select_all.mark("dlq-select-all")
                    for header in ("Failed (UTC)", "Function", "Error", "Attempts", "Retries", "Status", ""):
                        with ui.element("th").classes("text-left"):
                            ui.label(header)
                self.body = ui.element("tbody")
            self.empty = ui.label("").classes("text-gray-500 p-4").mark("dlq-empty")
            self.pager.controls(newer_mark="dlq-newer", page_mark="dlq-page", older_mark="dlq-older")

    def _row(self, msg: DeadLetter) -> None:
        with ui.element("tr").mark("dlq-row", f"dlq-row-{msg.id}"):
            with ui.element("td"):
                box = ui.checkbox(value=msg.id in self.selected).props("dense").mark(f"dlq-select-{msg.id}")
                box.on_value_change(lambda e, mid=msg.id: self._select(mid, bool(e.value)))
            with ui.element("td"):
                ui.label(fmt_time(msg.created_at)).classes("text-sm")
            with ui.element("td"):
                ui.label(msg.function_name).classes("text-sm")
            with ui.element("td").classes("max-w-[420px]"):
                kind = last_error_type(msg)
                text = f"{kind}: {msg.error}" if kind else msg.error
                ui.label(text).classes("text-sm font-mono truncate").mark("dlq-error")
            with ui.element("td"):
                ui.label(str(len(msg.attempts))).classes("text-sm")
            with ui.element("td"):
                ui.label(str(msg.retry_count)).classes("text-sm")
            with ui.element("td"):
                ui.badge(msg.status, color=DLQ_STATUS_COLOURS.get(msg.status, "grey")).mark(
                    f"dlq-status-{msg.id}"
                )
            with ui.element("td"), ui.row().classes("gap-1 no-wrap"):
                ui.button(icon="visibility", on_click=lambda mid=msg.id: self.drawer.open(mid)).props(
                    "flat dense round"
                ).tooltip("Details").mark(f"dlq-open-{msg.id}")
                if self.writer:
                    retry = ui.button(icon="replay", on_click=lambda mid=msg.id: self.retry_one(mid))
                    retry.props("flat dense round").tooltip("Retry").mark(f"dlq-retry-{msg.id}")
                    retry.set_enabled(msg.status == "pending")
                    discard = ui.button(
                        icon="delete_sweep", on_click=lambda mid=msg.id: self.discard_one(mid)
                    )
                    discard.props("flat dense round color=negative").tooltip("Discard")
                    discard.mark(f"dlq-discard-{msg.id}").set_enabled(msg.status in ("pending", "retrying"))

    # --- loading ----------------------------------------------------------------------------------

    async def refresh_stats(self) -> None:
        stats = await attempt(self.ctx.platform.dlq.stats(self.ctx.principal))
        if isinstance(stats, Failed):
            return
        self.total.set(str(stats["total"]))
        waiting = stats["pending"] + stats["retrying"]
        self.pending.set(
            str(waiting),
            f"{stats['retrying']} retrying now" if stats["retrying"] else "waiting for a decision",
            tone="negative" if waiting else None,
        )
        self.retried.set(str(stats["resolved"]), "resolved by a retry")
        self.discarded.set(str(stats["discarded"]))

    async def apply(self, filters: DlqFilters) -> None:
        previous, self.filters = self.filters, filters
        if await self.pager.restart():
            self.filters = previous

    async def load(self) -> str | None:
        f = self.filters
        page = await attempt(
            self.ctx.platform.dlq.list(
                self.ctx.principal,
                function_id=f.function_id,
                status=f.status,
                error_type=f.error_type,
                since=f.since,
                until=f.until,
                limit=PAGE_SIZE,
                cursor=self.pager.current,
            ),
            notify=False,
        )
        if isinstance(page, Failed):
            return self.show_error(page.message)
        self.message.set_visibility(False)
        self.shown = {m.id: m for m in page.items}
        self.selected &= set(self.shown)
        self.body.clear()
        with self.body:
            for msg in page.items:
                self._row(msg)
        empty = not self.shown
        self.table.set_visibility(not empty)
        self.empty.set_visibility(empty)
        if f == DlqFilters(status="pending"):
            self.empty.set_text(
                "Nothing pending: the dead-letter queue is empty of failed invocations to act on."
            )
        elif f.any:
            self.empty.set_text("No messages match these filters.")
        else:
            self.empty.set_text(
                "The dead-letter queue is empty: no async invocation has failed every attempt."
            )
        self.pager.loaded(page.next_cursor)
        self._selection_changed()
        return None

    def show_error(self, message: str) -> str:
        self.message.set_text(message)
        self.message.set_visibility(True)
        return message

    async def on_events(self, events: list[Event]) -> None:
        await self.refresh_stats()
        await self.load()
        changed = {e.message_id for e in events if isinstance(e, DlqChanged)}
        if self.drawer.message_id and (self.drawer.message_id in changed or "*" in changed):
            await self.drawer.refresh()

    # --- selection --------------------------------------------------------------------------------

    def _select(self, message_id: str, on: bool) -> None:
        if on:
            self.selected.add(message_id)
        else:
            self.selected.discard(message_id)
        self._selection_changed()

    def _select_all(self, event: object) -> None:
        on = bool(self.select_all.value)
        self.selected = set(self.shown) if on else set()
        for element in self.body.descendants():
            if isinstance(element, ui.checkbox):
                element.set_value(on)

    def _selection_changed(self) -> None:
        n = len(self.selected)
        self.selection.set_text(f"{n} selected" if n else f"{len(self.shown)} shown")
        if self.writer:
            self.retry_selected_button.set_enabled(n > 0)
            self.discard_selected_button.set_enabled(n > 0)

    # --- actions ----------------------------------------------------------------------------------

    async def retry_one(self, message_id: str) -> None:
        result = await attempt(self.ctx.platform.dlq.retry(self.ctx.principal, message_id))
        if isinstance(result, Failed):
            return
        if result.outcome is not None and result.outcome.result.ok:
            ui.notify(f"Retried {result.message.function_name}: resolved", type="positive")
        else:
            ui.notify(
                f"Retry failed: {result.error or result.message.error}", type="negative", multi_line=True
            )
        await self._changed()

    async def discard_one(self, message_id: str) -> None:
        if await attempt(self.ctx.platform.dlq.discard(self.ctx.principal, message_id), success="Discarded"):
            await self._changed()

    async def retry_selected(self) -> None:
        ids = self._ordered(self.selected)
        resolved, failed = 0, []
        for message_id in ids:
            result = await attempt(self.ctx.platform.dlq.retry(self.ctx.principal, message_id), notify=False)
            if isinstance(result, Failed):
                failed.append(result.message)
            elif result.outcome is not None and result.outcome.result.ok:
                resolved += 1
            else:
                failed.append(result.error or result.message.error)
        self._report("retried and resolved", resolved, failed)
        self.selected.clear()
        await self._changed()

    async def discard_selected(self) -> None:
        ids = self._ordered(self.selected)
        if not ids or not await confirm(
            f"Discard {len(ids)} message{'s' if len(ids) != 1 else ''}?",
            "They stay in the queue as discarded and are not retried.",
            action="Discard",
        ):
            return
        done, failed = 0, []
        for message_id in ids:
            result = await attempt(
                self.ctx.platform.dlq.discard(self.ctx.principal, message_id), notify=False
            )
            if isinstance(result, Failed):
                failed.append(result.message)
            else:
                done += 1
        self._report("discarded", done, failed)
        self.selected.clear()
        await self._changed()

    async def purge(self) -> None:
        if not await confirm(
            "Purge the dead-letter queue?",
            "Every message, in every status, is deleted for good. This cannot be undone.",
            action="Purge",
            typed=PURGE_WORD,
        ):
            return
        deleted = await attempt(self.ctx.platform.dlq.purge(self.ctx.principal))
        if not isinstance(deleted, Failed):
            ui.notify(f"Purged {deleted} message{'s' if deleted != 1 else ''}", type="positive")
            self.selected.clear()
            self.drawer.close()
            await self._changed()

    def _ordered(self, ids: Iterable[str]) -> list[str]:
        wanted = set(ids)
        return [i for i in self.shown if i in wanted] + sorted(wanted - set(self.shown))

    def _report(self, verb: str, done: int, failed: list[str]) -> None:
        if failed:
            reasons = "; ".join(sorted(set(failed))[:3])
            ui.notify(f"{done} {verb}, {len(failed)} failed: {reasons}", type="warning", multi_line=True)
        else:
            ui.notify(f"{done} {verb}", type="positive")

    async def _changed(self) -> None:
        """Reflect our own change now (the DlqChanged event also arrives, coalesced)."""
        await self.refresh_stats()
        await self.load()
        await self.drawer.refresh()


@console_page("/dlq", "Dead-letter queue")
async def dlq_page(ctx: PageContext, status: str = "pending", function: str = "", id: str = "") -> None:
    problem = ""
    if status and status not in STATUSES:
        problem = f"Unknown status {status!r}: choose one of {', '.join(STATUSES)}."
        status = ""
    page = DlqPage(ctx)

    async def apply() -> None:
        try:
            since, until = time_range.resolve()
        except Invalid as exc:
            page.show_error(exc.message)
            return
        function_id: str | None = None
        ref = selected_function(function_box)
        if ref:
            found = await attempt(ctx.platform.functions.get(ctx.principal, ref), notify=False)
            function_id = (
                ref if isinstance(found, Failed) else found.id
            )  # a deleted function's id still works
        await page.apply(
            DlqFilters(
                function_id=function_id,
                status=status_box.value or None,
                error_type=error_box.value or None,
                since=since,
                until=until,
            )
        )

    page.build_stats()
    error_types = await ctx.platform.dlq.error_types(ctx.principal)
    with ui.row().classes("w-full items-end gap-3").mark("dlq-filters"):
        function_box = await function_filter(ctx, function, apply)
        status_box = ui.select(STATUS_OPTIONS, value=status, label="Status", on_change=apply)
        status_box.classes("w-36").mark("filter-status")
        error_box = ui.select(
            {"": "Any error", **{t: t for t in error_types}}, value="", label="Error type", on_change=apply
        )
        error_box.classes("w-44").mark("filter-error-type")
        time_range = TimeRangeInput(on_change=apply)
        ui.button("Apply", icon="filter_alt", on_click=apply).props("outline").mark("apply-filters")
    page.build_actions()
    page.build_table()

    async def on_events(events: list[Event]) -> None:
        fresh = await ctx.platform.dlq.error_types(ctx.principal)
        if set(fresh) - set(error_box.options):
            error_box.set_options({"": "Any error", **{t: t for t in fresh}}, value=error_box.value)
        await page.on_events(events)

    live(ctx.client, ctx.platform.bus, DlqChanged, handler=on_events, max_rate=2.0)
    await page.refresh_stats()
    await apply()
    if problem:
        page.show_error(problem)
    if id:
        await page.drawer.open(id)
