"""What is deployed where: one row per function (by name, searchable, cursor pages), one column per
environment in promotion order, each cell the version running there with its actions: deploy (a published
version or $LATEST, optional memory/timeout overrides), promote to the next environment (typing the target's
name when it is the last, production-like one) and undeploy."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from nicegui import ui

from components.confirm import confirm
from components.cursor_pager import CursorPager
from components.feedback import Failed, attempt
from components.frame import PageContext
from data.models import Environment, Function, FunctionEnvironment
from engine.principal import Principal
from engine.services.deployments import Cell, DeploymentService, Matrix
from engine.services.environment_schemas import DeployRequest, validated

PAGE_SIZE = 20
LATEST = "$LATEST"


class DeploymentMatrix:
    def __init__(self, ctx: PageContext) -> None:
        self.ctx = ctx
        self.can_deploy = ctx.principal.can("developer")
        self.pager = CursorPager(self.load)
        self.data: Matrix | None = None
        self.target: tuple[Function, Environment] | None = None  # what the deploy dialog deploys
        with ui.row().classes("w-full items-center gap-3"):
            self.search = ui.input("Search functions", on_change=self._searched).props(
                "clearable debounce=300"
            )
            self.search.mark("matrix-search")
            ui.space()
            page_label = ui.label("").classes("text-sm text-gray-500")
            previous = ui.button("Previous", icon="chevron_left", on_click=self.pager.newer).props("flat")
            following = ui.button("Next", icon="chevron_right", on_click=self.pager.older).props("flat")
            self.pager.attach(previous, page_label, following.mark("matrix-next"))
        self.grid_box = ui.column().classes("w-full gap-0").mark("deploy-matrix")
        self._dialog()

    async def load(self) -> None:
        data = await attempt(
            self.ctx.platform.deployments.matrix(
                self.ctx.principal,
                search=(self.search.value or "").strip() or None,
                limit=PAGE_SIZE,
                cursor=self.pager.current,
            )
        )
        if isinstance(data, Failed):
            return
        self.data = data
        self._render()

    def _render(self) -> None:
        data = self.data
        assert data is not None
        self.grid_box.clear()
        self.pager.loaded(data.next_cursor)
        with self.grid_box:
            if not data.rows:
                ui.label("No functions to deploy yet.").classes("text-gray-500 py-6").mark("matrix-empty")
                return
            columns = "minmax(140px,1fr) " + " ".join("minmax(170px,1fr)" for _ in data.environments)
            with ui.grid(columns=columns).classes("w-full items-center gap-x-4 gap-y-2"):
                ui.label("Function").classes("text-xs uppercase text-gray-500")
                for env in data.environments:
                    ui.label(env.name + (" (default)" if env.is_default else "")).classes(
                        "text-xs uppercase text-gray-500"
                    )
                for row in data.rows:
                    ui.link(row.function.name, f"/functions/{row.function.id}").classes("font-medium")
                    for at, env in enumerate(data.environments):
                        self._cell(row.function, env, row.cell(env), at + 1 < len(data.environments))

    def _cell(self, fn: Function, env: Environment, cell: Cell | None, can_promote: bool) -> None:
        key = f"{fn.name}-{env.name}"
        with ui.row().classes("items-center gap-1 no-wrap"):
            if cell is None:
                ui.label("—").classes("text-gray-400").mark(f"cell-{key}")
            else:
                label = ui.badge(cell.label, color="grey" if cell.implicit else "indigo").mark(f"cell-{key}")
                if cell.implicit:
                    label.tooltip("the default environment runs $LATEST until a version is deployed")
            buttons: list[tuple[str, str, str, Callable[[], Awaitable[None]]]] = [
                ("upload", "Deploy", "deploy", lambda: self._open_deploy(fn, env))
            ]
            if cell is not None and can_promote:
                buttons.append(("arrow_forward", "Promote", "promote", lambda: self._promote(fn, env, cell)))
            if cell is not None and not cell.implicit:
                buttons.append(("close", "Undeploy", "undeploy", lambda: self._undeploy(fn, env)))
            for icon, tip, name, action in buttons:
                button = ui.button(icon=icon, on_click=action).props("flat dense round size=sm")
                button.tooltip(tip).mark(f"{name}-{key}").set_enabled(self.can_deploy)

    # --- actions ----------------------------------------------------------------------------------

    def _dialog(self) -> None:
        with ui.dialog() as self.dialog, ui.card().classes("w-[420px] gap-2").mark("deploy-dialog"):
            self.dialog_title = ui.label("").classes("text-lg font-semibold")
            self.version = ui.select({LATEST: LATEST}, value=LATEST, label="Version").classes("w-full")
            self.version.mark("deploy-version")
            ui.label("Leave blank to use the function's own limits.").classes("text-sm text-gray-500")
            with ui.row().classes("w-full gap-3"):
                self.memory = ui.number("Memory (MB)", precision=0).mark("deploy-memory")
                self.timeout = ui.number("Timeout (s)", precision=0).mark("deploy-timeout")
            self.dialog_error = ui.label("").classes("text-red-600 text-sm").mark("deploy-error")
            with ui.row().classes("w-full justify-end gap-2"):
                ui.button("Cancel", on_click=self.dialog.close).props("flat")
                ui.button("Deploy", icon="upload", on_click=self._deploy).mark("deploy-confirm")

    async def _open_deploy(self, fn: Function, env: Environment) -> None:
        versions = await attempt(self.ctx.platform.functions.versions(self.ctx.principal, fn.id))
        if isinstance(versions, Failed):
            return
        options = {
            LATEST: f"{LATEST} (the working copy)",
            **{str(v.version): f"v{v.version}" for v in versions},
        }
        self.target = (fn, env)
        self.dialog_title.set_text(f"Deploy {fn.name} to {env.name}")
        self.version.set_options(options, value=str(versions[0].version) if versions else LATEST)
        self.memory.set_value(None)
        self.timeout.set_value(None)
        self.dialog_error.set_text("")
        self.dialog.open()

    async def _deploy(self) -> None:
        assert self.target is not None
        fn, env = self.target
        self.dialog_error.set_text("")
        version = None if self.version.value in (None, LATEST) else int(self.version.value)
        values: dict[str, Any] = {"version": version}
        for field, element in (("memory_mb", self.memory), ("timeout_sec", self.timeout)):
            if element.value is not None:
                values[field] = int(element.value)
        service = self.ctx.platform.deployments
        done = await attempt(_deploy(service, self.ctx.principal, fn.id, env.id, values), notify=False)
        if isinstance(done, Failed):
            self.dialog_error.set_text(done.message)
            return
        self.dialog.close()
        shown = LATEST if version is None else f"v{version}"
        ui.notify(f"Deployed {fn.name} {shown} to {env.name}", type="positive")
        await self.load()

    async def _promote(self, fn: Function, env: Environment, cell: Cell) -> None:
        assert self.data is not None
        order = self.data.environments
        target = order[order.index(env) + 1]
        last = target is order[-1]  # the production-like end of the line: the user types its name
        message = f"{target.name} then runs {cell.label}."
        if cell.version is None:
            message = (
                f"{env.name} runs $LATEST: it is first published as a new version, which {target.name} runs."
            )
        if not await confirm(
            f"Promote {fn.name} from {env.name} to {target.name}?",
            message,
            action="Promote",
            danger=last,
            typed=target.name if last else None,
        ):
            return
        promotion = await attempt(self.ctx.platform.deployments.promote(self.ctx.principal, fn.id, env.id))
        if not isinstance(promotion, Failed):
            ui.notify(promotion.message, type="positive")
            await self.load()

    async def _undeploy(self, fn: Function, env: Environment) -> None:
        question = f"Undeploy {fn.name} from {env.name}?"
        if not await confirm(question, f"Invoking it in {env.name} then fails until it is deployed again."):
            return
        done = await attempt(
            self.ctx.platform.deployments.undeploy(self.ctx.principal, fn.id, env.id),
            success=f"Undeployed {fn.name} from {env.name}",
        )
        if not isinstance(done, Failed):
            await self.load()

    # --- paging -----------------------------------------------------------------------------------

    async def _searched(self, *_: Any) -> None:
        self.pager.reset()
        await self.load()


async def _deploy(
    service: DeploymentService, principal: Principal, function_id: str, env_id: str, values: dict[str, Any]
) -> tuple[Environment, FunctionEnvironment]:
    """Validate (a Failed naming the field, through `attempt`) and deploy."""
    return await service.deploy(principal, function_id, env_id, validated(DeployRequest, **values))
