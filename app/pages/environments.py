"""The Environments section: the environments in promotion order (default marked; add, edit, delete), one
environment's variables and secrets (masked: set, replace, remove, never shown again), and what is deployed
where (components/deployment_matrix.py). Live: another tab's or the API's changes show up here."""

from __future__ import annotations

from typing import Any

from nicegui import ui

from components.confirm import confirm
from components.deployment_matrix import DeploymentMatrix
from components.feedback import Failed, attempt
from components.frame import PageContext, console_page
from components.live import live
from components.secrets_editor import SecretsEditor
from data.models import Environment
from engine.events import EnvironmentChanged, Event, FunctionChanged
from engine.principal import Principal
from engine.services.environment_schemas import EnvironmentCreate, EnvironmentUpdate, validated
from engine.services.environments import EnvironmentService


@console_page("/environments", "Environments")
async def environments_page(ctx: PageContext, env: str = "") -> None:
    page = EnvironmentsPage(ctx)
    await page.load()
    await page.select(env or next((e.name for e in page.environments if e.is_default), ""))
    await page.matrix.load()


class EnvironmentsPage:
    def __init__(self, ctx: PageContext) -> None:
        self.ctx = ctx
        self.admin = ctx.principal.can("admin")
        self.environments: list[Environment] = []
        self.selected: Environment | None = None
        self.editing: Environment | None = None  # the environment the dialog edits (None: a new one)
        self.env_rows: list[tuple[ui.input, ui.input]] = []
        with ui.row().classes("w-full items-center"):
            ui.label("Environments").classes("text-lg font-semibold")
            ui.space()
            add = ui.button("Add environment", icon="add", on_click=lambda: self._open_editor(None))
            add.mark("env-add").set_enabled(self.admin)
        self.cards = ui.row().classes("w-full gap-3").mark("env-list")
        self.detail = ui.card().classes("w-full gap-2").mark("env-detail")
        self._editor()
        ui.label("What is deployed where").classes("text-lg font-semibold mt-4")
        self.matrix = DeploymentMatrix(ctx)
        live(
            ctx.client,
            ctx.platform.bus,
            EnvironmentChanged,
            FunctionChanged,
            handler=self._changed,
            max_rate=2,
        )

    async def load(self) -> None:
        environments = await attempt(self.ctx.platform.environments.list(self.ctx.principal))
        if isinstance(environments, Failed):
            return
        self.environments = environments
        self._render_cards()

    async def _changed(self, events: list[Event]) -> None:
        await self.load()
        if any(isinstance(e, EnvironmentChanged) for e in events) and self.selected is not None:
            current = next((e for e in self.environments if e.id == self.selected.id), None)
            if current is None:  # deleted elsewhere
                self.selected = None
                self.detail.clear()
            else:
                self.selected = current
                # Variables being edited here are left alone.
                self.secrets.render(self.ctx.platform.environments.secret_names(current))
        await self.matrix.load()

    # --- the list ---------------------------------------------------------------------------------

    def _render_cards(self) -> None:
        self.cards.clear()
        with self.cards:
            for env in self.environments:
                chosen = self.selected is not None and self.selected.id == env.id
                card = ui.card().classes(
                    "w-64 gap-1 cursor-pointer" + (" ring-2 ring-blue-500" if chosen else "")
                )
                card.mark(f"env-card-{env.name}").on("click", lambda _, n=env.name: self.select(n))
                with card:
                    with ui.row().classes("items-center gap-2"):
                        ui.label(env.name).classes("text-lg font-semibold")
                        if env.is_default:
                            ui.badge("default", color="positive").mark(f"env-default-{env.name}")
                        ui.space()
                        ui.label(f"#{env.position}").classes("text-xs text-gray-500")
                    ui.label(env.description or "—").classes("text-sm text-gray-500")
                    secrets = self.ctx.platform.environments.secret_names(env)
                    counts = f"{_count(len(env.env_vars), 'variable')} · {_count(len(secrets), 'secret')}"
                    ui.label(counts).classes("text-sm")
                    with ui.row().classes("gap-1"):
                        edit = ui.button(icon="edit", on_click=lambda e=env: self._open_editor(e))
                        edit.props("flat dense").mark(f"env-edit-{env.name}").set_enabled(self.admin)
                        delete = ui.button(icon="delete", on_click=lambda e=env: self._delete(e))
                        delete.props("flat dense color=negative").mark(f"env-delete-{env.name}")
                        delete.set_enabled(self.admin and not env.is_default)

    def _editor(self) -> None:
        with ui.dialog() as self.dialog, ui.card().classes("w-[420px] gap-2").mark("env-editor"):
            self.dialog_title = ui.label("").classes("text-lg font-semibold")
            self.fields: dict[str, Any] = {
                "name": ui.input("Name").classes("w-full").mark("env-name"),
                "description": ui.input("Description").classes("w-full").mark("env-description"),
                "position": ui.number("Position (promotion order)", precision=0).classes("w-full"),
                "is_default": ui.switch("Default environment").mark("env-is-default"),
            }
            self.fields["position"].mark("env-position")
            self.dialog_error = ui.label("").classes("text-red-600 text-sm").mark("env-editor-error")
            with ui.row().classes("w-full justify-end gap-2"):
                ui.button("Cancel", on_click=self.dialog.close).props("flat")
                ui.button("Save", icon="save", on_click=self._save).mark("env-save")

    def _open_editor(self, env: Environment | None) -> None:
        self.editing = env
        self.dialog_title.set_text(f"Edit {env.name}" if env else "New environment")
        self.fields["name"].set_value(env.name if env else "")
        self.fields["description"].set_value(env.description if env else "")
        self.fields["position"].set_value(env.position if env else None)
        self.fields["is_default"].set_value(env.is_default if env else False)
        self._clear_errors()
        self.dialog.open()

    def _clear_errors(self) -> None:
        for element in self.fields.values():
            if hasattr(element, "error"):
                element.error = None
        self.dialog_error.set_text("")

    async def _save(self) -> None:
        self._clear_errors()
        position = self.fields["position"].value
        values: dict[str, Any] = {
            "name": (self.fields["name"].value or "").strip(),
            "description": self.fields["description"].value or "",
            "position": int(position) if position is not None else None,
            "is_default": bool(self.fields["is_default"].value),
        }
        service, principal, env = self.ctx.platform.environments, self.ctx.principal, self.editing
        if env is None:
            call = attempt(_create(service, principal, values), notify=False)
        else:
            changes = {k: v for k, v in values.items() if v != getattr(env, k) and v is not None}
            if not changes:
                self.dialog.close()
                return
            call = attempt(_update(service, principal, env.id, changes), notify=False)
        saved = await call
        if isinstance(saved, Failed):
            target = self.fields.get(saved.field or "")
            if target is not None and hasattr(target, "error"):
                target.error = saved.message
            else:
                self.dialog_error.set_text(saved.message)
            return
        self.dialog.close()
        ui.notify(f"Saved environment {saved.name}", type="positive")
        await self.load()
        await self.select(saved.name)

    async def _delete(self, env: Environment) -> None:
        if not await confirm(f"Delete environment {env.name}?", "Its variables and secrets are deleted."):
            return
        service, principal = self.ctx.platform.environments, self.ctx.principal
        done = await attempt(service.delete(principal, env.id), notify=False)
        if isinstance(done, Failed) and done.field == "force":
            forced = await confirm(
                f"Functions are deployed to {env.name}",
                f"{done.message.split(':')[0]}. Deleting the environment undeploys them.",
                typed=env.name,
            )
            if not forced:
                return
            done = await attempt(service.delete(principal, env.id, force=True), notify=False)
        if isinstance(done, Failed):
            ui.notify(done.message, type="negative")
            return
        ui.notify(f"Deleted environment {env.name}", type="positive")
        if self.selected is not None and self.selected.id == env.id:
            self.selected = None
            self.detail.clear()
        await self.load()
        await self.matrix.load()

    # --- one environment: variables and secrets ---------------------------------------------------------

    async def select(self, name: str) -> None:
        env = next((e for e in self.environments if name in (e.name, e.id)), None)
        if env is None:
            return
        self.selected = env
        self._render_cards()
        self._render_detail()

    def _render_detail(self) -> None:
        env = self.selected
        assert env is not None
        self.detail.clear()
        self.env_rows = []
        with self.detail:
            ui.label(f"{env.name}: variables").classes("text-lg font-semibold").mark("env-detail-title")
            ui.label(
                "Every function running in this environment sees these, over its own variables."
            ).classes("text-sm text-gray-500")
            self.vars_box = ui.column().classes("w-full gap-1").mark("env-vars")
            for key, value in sorted(env.env_vars.items()):
                self._var_row(key, value)
            with ui.row().classes("gap-2"):
                add = ui.button("Add variable", icon="add", on_click=lambda: self._var_row("", ""))
                add.props("flat").mark("env-var-add").set_enabled(self.admin)
                save = ui.button("Save variables", icon="save", on_click=self._save_variables)
                save.mark("env-vars-save").set_enabled(self.admin)
            self.vars_error = ui.label("").classes("text-red-600 text-sm").mark("env-vars-error")
            ui.label(f"{env.name}: secrets").classes("text-lg font-semibold mt-2")
            self.secrets = SecretsEditor(
                self.ctx.platform.environments.secret_names(env),
                self._change_secrets,
                writer=self.admin,
                mark="env",
                removal_note="Functions in this environment stop seeing it.",
            )

    def _var_row(self, key: str, value: str) -> None:
        with self.vars_box, ui.row().classes("w-full items-center gap-2") as row:
            pair = (ui.input("Name", value=key).mark("env-var-key"), ui.input("Value", value=value))
            pair[1].classes("flex-1").mark("env-var-value")
            self.env_rows.append(pair)

            def remove() -> None:
                self.env_rows.remove(pair)
                row.delete()

            ui.button(icon="close", on_click=remove).props("flat dense").mark("env-var-remove")

    async def _save_variables(self) -> None:
        assert self.selected is not None
        self.vars_error.set_text("")
        values: dict[str, str] = {}
        for key_input, value_input in self.env_rows:
            key = (key_input.value or "").strip()
            if key or value_input.value:
                if not key or key in values:
                    self.vars_error.set_text(
                        "Every variable needs a name, once." if not key else f"{key} is set twice."
                    )
                    return
                values[key] = value_input.value or ""
        service = self.ctx.platform.environments
        env = await attempt(service.set_variables(self.ctx.principal, self.selected.id, values), notify=False)
        if isinstance(env, Failed):
            self.vars_error.set_text(env.message)
            return
        self.selected = env
        ui.notify(f"Saved {len(values)} variables for {env.name}", type="positive")

    async def _change_secrets(self, changes: dict[str, str | None]) -> list[str] | Failed:
        assert self.selected is not None
        service = self.ctx.platform.environments
        env = await attempt(
            service.change_secrets(self.ctx.principal, self.selected.id, changes), notify=False
        )
        if isinstance(env, Failed):
            return env
        self.selected = env
        return service.secret_names(env)


async def _create(service: EnvironmentService, principal: Principal, values: dict[str, Any]) -> Environment:
    """Validate (a Failed naming the field, through `attempt`) and create."""
    return await service.create(principal, validated(EnvironmentCreate, **values))


async def _update(
    service: EnvironmentService, principal: Principal, ref: str, changes: dict[str, Any]
) -> Environment:
    return await service.update(principal, ref, validated(EnvironmentUpdate, **changes))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
