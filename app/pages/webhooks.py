"""Webhooks: every function's public URL (with a copy button), whether it is on, how it is protected and
its last call; for the one selected, its settings (sync or async, signature scheme, allowlist, rate limit,
retry policy), a new URL, a signing secret generated or rotated and shown once, stats of the last 24 h and
the call history with why each refused call was refused. Live: calls and changes show up as they happen.
`?id=` selects a webhook by id, `?function=` (or `?workflow=`) by its target's name."""

from __future__ import annotations

from nicegui import ui

from components.confirm import confirm
from components.feedback import Failed, attempt
from components.frame import PageContext, console_page
from components.invocation_drawer import fmt_time
from components.live import live
from components.stats_card import StatsCard
from components.webhook_history import WebhookHistory
from components.webhook_settings import SCHEMES, WebhookSettingsForm, ask_grace, show_secret
from data.models import Webhook, WebhookCall
from engine.events import Event, WebhookCalled, WebhookChanged
from engine.services.setting_specs import API_ADDRESS


@console_page("/webhooks", "Webhooks")
async def webhooks_page(ctx: PageContext, id: str = "", function: str = "", workflow: str = "") -> None:
    page = WebhooksPage(ctx)
    await page.load()
    kind, name = ("workflow", workflow) if workflow else ("function", function)
    wanted = next(
        (h for h in page.hooks if id == h.id or (name and (kind, name) == (h.target_kind, h.target_name))),
        None,
    )
    if wanted is None and f"{kind}:{name}" in page.add_box.options:
        page.add_box.set_value(f"{kind}:{name}")  # not enabled yet: ready to be
    await page.select(wanted or (page.hooks[0] if page.hooks else None))
    live(ctx.client, ctx.platform.bus, WebhookCalled, WebhookChanged, handler=page.on_events, max_rate=4)


class WebhooksPage:
    def __init__(self, ctx: PageContext) -> None:
        self.ctx = ctx
        self.writer = ctx.principal.can("developer")
        # The API address setting (General) when set, else the address this page was reached on.
        configured = str(ctx.platform.system_settings.get(API_ADDRESS) or "")
        self.base = (configured or str(ctx.request.base_url)).rstrip("/")
        self.hooks: list[Webhook] = []
        self.selected: Webhook | None = None
        self.last_labels: dict[str, ui.label] = {}
        with ui.row().classes("w-full items-end gap-3").mark("webhook-add-row"):
            ui.label("Webhooks").classes("text-lg font-semibold")
            ui.space()
            self.add_box = ui.select({}, label="Function or workflow", with_input=True).classes("w-60")
            self.add_box.mark("webhook-add-function").set_visibility(self.writer)
            add = ui.button("Enable webhook", icon="add_link", on_click=self.add).mark("webhook-add")
            add.set_visibility(self.writer)
        self.list = ui.column().classes("w-full gap-0").mark("webhook-list")
        self.detail = ui.column().classes("w-full gap-3").mark("webhook-detail")
        with ui.row().classes("w-full gap-3").mark("webhook-stats") as self.stats_row:
            self.total = StatsCard("Calls (24 h)", icon="call_received", mark="webhook-total")
            self.accepted = StatsCard("Accepted", icon="task_alt", mark="webhook-accepted")
            self.rejected = StatsCard("Rejected", icon="block", mark="webhook-rejected")
            self.failed = StatsCard("Failed", icon="error_outline", mark="webhook-failed")
        self.history = WebhookHistory(ctx)
        self.overlay = ui.element("div")  # dialogs live here: the detail is rebuilt under them

    def url(self, hook: Webhook) -> str:
        return f"{self.base}/webhook/{hook.key}" if self.writer else f"{self.base}/webhook/{hook.key[:6]}…"

    # --- the list -----------------------------------------------------------------------------------

    async def load(self) -> None:
        page = await attempt(self.ctx.platform.webhooks.list(self.ctx.principal, limit=100))
        if isinstance(page, Failed):
            return
        self.hooks = page.items
        last = await self.ctx.platform.webhooks.history.last_calls(
            self.ctx.principal, [h.id for h in self.hooks]
        )
        self.list.clear()
        self.last_labels = {}
        with self.list:
            if not self.hooks:
                ui.label(
                    "No webhooks yet: pick a function or workflow above and enable its webhook."
                ).classes("text-gray-500 p-2").mark("webhooks-empty")
            for hook in self.hooks:
                self._row(hook, last.get(hook.id))
        if self.writer:
            taken = {(h.target_kind, h.target_id) for h in self.hooks}
            functions = await self.ctx.platform.functions.list(self.ctx.principal, limit=100)
            options = {
                f"function:{f.name}": f.name for f in functions.items if ("function", f.id) not in taken
            }
            workflows = await self.ctx.platform.workflows.list(self.ctx.principal, limit=100)
            options |= {
                f"workflow:{w.name}": f"{w.name} (workflow)"
                for w in workflows.items
                if ("workflow", w.id) not in taken
            }
            self.add_box.set_options(
                options, value=self.add_box.value if self.add_box.value in options else None
            )

    def _row(self, hook: Webhook, last: WebhookCall | None) -> None:
        chosen = self.selected is not None and self.selected.id == hook.id
        row = ui.row().classes(
            "w-full items-center gap-3 px-3 py-2 border-b cursor-pointer"
            + (" bg-blue-50 dark:bg-slate-800" if chosen else "")
        )
        row.mark("webhook-row", f"webhook-row-{hook.target_name}").on("click", lambda h=hook: self.select(h))
        with row:
            ui.icon("functions" if hook.target_kind == "function" else "account_tree").classes(
                "text-gray-500"
            )
            ui.label(hook.target_name).classes("font-semibold w-40 truncate")
            ui.badge("enabled" if hook.enabled else "disabled", color="positive" if hook.enabled else "grey")
            ui.label(self.url(hook)).classes("font-mono text-sm truncate flex-1").mark(
                f"webhook-url-{hook.target_name}"
            )
            self._copy_button(self.url(hook), f"webhook-copy-{hook.target_name}")
            ui.label(hook.mode).classes("text-sm w-12")
            ui.label(SCHEMES[hook.signature_scheme].split(" (")[0]).classes("text-sm w-28")
            limit = f"{hook.rate_limit_per_min}/min" if hook.rate_limit_per_min else "no limit"
            ui.label(limit).classes("text-sm w-20")
            self.last_labels[hook.id] = ui.label(_last(last)).classes("text-sm text-gray-500 w-56")

    def _copy_button(self, text: str, mark: str) -> None:
        def copy() -> None:
            ui.clipboard.write(text)
            ui.notify("URL copied", type="positive")

        button = ui.button(icon="content_copy", on_click=copy).props("flat dense round").tooltip("Copy URL")
        button.mark(mark).set_visibility(self.writer)
        button.on("click.stop", lambda: None)  # copying does not also select the row

    async def add(self) -> None:
        if not self.add_box.value:
            ui.notify("Pick a function or workflow first", type="warning")
            return
        kind, _, name = str(self.add_box.value).partition(":")
        changed = await attempt(self.ctx.platform.webhooks.enable(self.ctx.principal, kind, name))
        if isinstance(changed, Failed):
            return
        ui.notify(f"Webhook of {name} enabled", type="positive")
        self.add_box.set_value(None)
        await self.load()
        await self.select(changed.webhook)

    # --- the selected webhook ------------------------------------------------------------------------

    async def select(self, hook: Webhook | None) -> None:
        self.selected = hook
        await self.load()  # redraw the highlight
        self.detail.clear()
        self.stats_row.set_visibility(hook is not None)
        if hook is not None:
            with self.detail:
                self._build_detail(hook)
            await self.refresh_stats()
        await self.history.show(hook.id if hook else None)

    def _build_detail(self, hook: Webhook) -> None:
        with ui.card().classes("w-full gap-3"):
            with ui.row().classes("w-full items-center gap-2"):
                ui.label(f"Webhook of {hook.target_name}").classes("text-lg font-semibold").mark(
                    "webhook-title"
                )
                ui.badge(
                    "enabled" if hook.enabled else "disabled", color="positive" if hook.enabled else "grey"
                ).mark("webhook-state")
                ui.space()
                if self.writer:
                    toggle = "Disable" if hook.enabled else "Enable"
                    ui.button(toggle, icon="power_settings_new", on_click=self.toggle).props(
                        "outline dense"
                    ).mark("webhook-toggle")
                    ui.button("New URL", icon="autorenew", on_click=self.regenerate).props(
                        "outline dense"
                    ).mark("webhook-regenerate")
                    has_secret = bool(hook.secret)
                    label = "Rotate secret" if has_secret else "Generate secret"
                    ui.button(label, icon="key", on_click=self.rotate_secret).props("outline dense").mark(
                        "webhook-secret"
                    )
            with ui.row().classes("w-full items-center gap-2"):
                ui.label(self.url(hook)).classes("font-mono text-sm break-all").mark("webhook-detail-url")
                self._copy_button(self.url(hook), "webhook-detail-copy")
            info = self.ctx.platform.webhooks.secret_info(hook)
            rotated = (
                f"secret set {fmt_time(info['secret_rotated_at'])} UTC" if info["has_secret"] else "no secret"
            )
            ui.label(rotated).classes("text-xs text-gray-500").mark("webhook-secret-state")
            self.form = WebhookSettingsForm(hook, editable=self.writer)
            if self.writer:
                ui.button("Save settings", icon="save", on_click=self.save).mark("webhook-save")

    async def save(self) -> None:
        hook = self.selected
        data = self.form.request()
        if hook is None or data is None:
            return
        result = await attempt(
            self.ctx.platform.webhooks.update(self.ctx.principal, hook.target_kind, hook.target_id, data),
            notify=False,
        )
        if isinstance(result, Failed):
            self.form.show_error(result.field, result.message)
            return
        ui.notify("Settings saved", type="positive")
        if result.secret:
            with self.overlay:
                show_secret(result.secret)
        await self.select(result.webhook)

    async def toggle(self) -> None:
        hook = self.selected
        if hook is None:
            return
        service = self.ctx.platform.webhooks
        call = service.disable if hook.enabled else service.enable
        changed = await attempt(call(self.ctx.principal, hook.target_kind, hook.target_id))
        if not isinstance(changed, Failed):
            ui.notify(f"Webhook {'enabled' if changed.webhook.enabled else 'disabled'}", type="positive")
            await self.select(changed.webhook)

    async def regenerate(self) -> None:
        hook = self.selected
        if hook is None:
            return
        with self.overlay:
            sure = await confirm(
                "Give this webhook a new URL?",
                "The current URL stops working at once; senders must be given the new one.",
                action="New URL",
            )
        if not sure:
            return
        changed = await attempt(
            self.ctx.platform.webhooks.regenerate(self.ctx.principal, hook.target_kind, hook.target_id)
        )
        if not isinstance(changed, Failed):
            ui.notify("New URL generated; the old one no longer works", type="positive")
            await self.select(changed.webhook)

    async def rotate_secret(self) -> None:
        hook = self.selected
        if hook is None:
            return
        grace = 0
        if hook.secret:
            with self.overlay:
                chosen = await ask_grace()
            if chosen is None:
                return
            grace = chosen
        changed = await attempt(
            self.ctx.platform.webhooks.rotate_secret(
                self.ctx.principal, hook.target_kind, hook.target_id, grace_sec=grace
            )
        )
        if not isinstance(changed, Failed) and changed.secret:
            with self.overlay:
                show_secret(changed.secret)
            await self.select(changed.webhook)

    async def refresh_stats(self) -> None:
        if self.selected is None:
            return
        stats = await attempt(
            self.ctx.platform.webhooks.history.stats(self.ctx.principal, self.selected.id), notify=False
        )
        if isinstance(stats, Failed):
            return
        self.total.set(str(stats["total"]))
        self.accepted.set(str(stats["accepted"]))
        self.rejected.set(str(stats["rejected"]), tone="warning" if stats["rejected"] else None)
        self.failed.set(str(stats["failed"]), tone="negative" if stats["failed"] else None)

    # --- live -----------------------------------------------------------------------------------------

    async def on_events(self, events: list[Event]) -> None:
        changed = {e.webhook_id for e in events if isinstance(e, WebhookChanged)}
        called = {e.webhook_id for e in events if isinstance(e, WebhookCalled)}
        selected = self.selected
        if selected is not None and selected.id in changed:
            found = await attempt(
                self.ctx.platform.webhooks.get(self.ctx.principal, selected.id), notify=False
            )
            await self.select(None if isinstance(found, Failed) else found)  # rebuilt (or gone)
            return  # the list, stats and history were all just reloaded
        if changed:
            await self.load()  # another webhook changed: the list (and its last calls) anew
        else:
            known = [i for i in called if i in self.last_labels]
            last = await self.ctx.platform.webhooks.history.last_calls(self.ctx.principal, known)
            for webhook_id, call in last.items():
                self.last_labels[webhook_id].set_text(_last(call))
        if selected is not None and selected.id in called:
            await self.refresh_stats()
            if self.history.on_first_page:
                await self.history.refresh()


def _last(call: WebhookCall | None) -> str:
    if call is None:
        return "never called"
    reason = f" {call.reason}" if call.reason else ""
    return f"last: {call.status}{reason} at {fmt_time(call.created_at)}"
