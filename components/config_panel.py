"""A function's Configuration tab: handler, description, tags, limits and retries, the executor (a sandboxed
process, or for python functions a container of an image when this node reaches a Docker engine), environment
variables (saved together as one update) and its secrets (set and removed one at a time, never shown)."""

from __future__ import annotations

import asyncio
from typing import Any

from nicegui import ui

from components.code_panel import FunctionPage
from components.feedback import Failed, attempt
from components.form_errors import LABELS, clear_errors, show_error, whole
from components.layer_panel import LayerPanel
from components.secrets_editor import SecretsEditor
from engine.runtimes.base import RuntimeInfo
from engine.runtimes.docker_executor import RUNTIMES as DOCKER_RUNTIMES
from engine.services.function_schemas import FunctionUpdate

EXECUTORS = {"process": "Sandboxed process", "docker": "Docker container"}


class ConfigPanel:
    NUMBERS = (
        ("memory_mb", "cfg-memory"),
        ("timeout_sec", "cfg-timeout"),
        ("max_concurrency", "cfg-concurrency"),
        ("min_warm", "cfg-min-warm"),
        ("retry_attempts", "cfg-retry-attempts"),
        ("retry_backoff_ms", "cfg-retry-backoff"),
        ("retry_backoff_max_ms", "cfg-retry-backoff-max"),
    )

    def __init__(self, page: FunctionPage, secret_names: list[str]) -> None:
        self.page = page
        fn = page.fn
        self.env_rows: list[tuple[ui.input, ui.input]] = []
        self.fields: dict[str, Any] = {}
        with ui.card().classes("w-full gap-2"):
            ui.label("Function").classes("text-lg font-semibold")
            with ui.row().classes("w-full gap-4"):
                self.fields["handler"] = ui.input("Handler", value=fn.handler).mark("cfg-handler")
                self.fields["description"] = (
                    ui.input("Description", value=fn.description).classes("flex-1").mark("cfg-description")
                )
            self.fields["tags"] = (
                ui.input_chips("Tags", value=list(fn.tags), new_value_mode="add-unique")
                .classes("w-full")
                .mark("cfg-tags")
            )
            ui.label("Limits and retries").classes("text-lg font-semibold mt-2")
            with ui.row().classes("w-full gap-4"):
                for field, marker in self.NUMBERS:
                    value = getattr(fn, field)
                    self.fields[field] = ui.number(LABELS[field], value=value, precision=0).mark(marker)
            self.network = ui.switch("Network access", value=fn.network).mark("cfg-network")
            self._executor_fields(fn.executor, fn.image, fn.runtime)
            ui.label("Environment variables").classes("text-lg font-semibold mt-2")
            self.env_box = ui.column().classes("w-full gap-1").mark("cfg-env")
            for key, value in sorted(fn.env_vars.items()):
                self._env_row(key, value)
            ui.button("Add variable", icon="add", on_click=lambda: self._env_row("", "")).props("flat").mark(
                "cfg-env-add"
            )
            self.error = ui.label("").classes("text-red-600 text-sm").mark("cfg-error")
            self.error.set_visibility(False)
            with ui.row().classes("w-full justify-end"):
                save = ui.button("Save configuration", icon="save", on_click=self.save).mark("cfg-save")
                save.set_enabled(page.can_write)
        with ui.card().classes("w-full gap-2"):
            ui.label("Secrets").classes("text-lg font-semibold")
            self.secrets = SecretsEditor(
                secret_names,
                self._change_secrets,
                writer=page.can_write,
                mark="cfg",
                removal_note="Running code stops seeing it after this change.",
            )
        self.layers = LayerPanel(page)  # filled by `await self.layers.load()`

    def _executor_fields(self, executor: str, image: str, runtime: str) -> None:
        """The executor select (Docker only offered for the runtimes it runs, and disabled until the engine
        is known to answer) and the image input, shown while Docker is chosen."""
        self.docker: RuntimeInfo | None = None  # set by load_executors()
        docker = runtime in DOCKER_RUNTIMES or executor == "docker"
        offered = EXECUTORS if docker else {"process": EXECUTORS["process"]}
        with ui.row().classes("w-full items-start gap-4"):
            self.executor = ui.select(
                dict(offered), value=executor, label=LABELS["executor"], on_change=self._executor_changed
            )
            # Its error is set by the change handler: NiceGUI's validation after a change would clear it.
            self.executor.without_auto_validation().classes("min-w-[220px]").mark("cfg-executor")
            self.fields["executor"] = self.executor
            self.fields["image"] = (
                ui.input(LABELS["image"], value=image, placeholder="python:3.11-slim")
                .classes("flex-1")
                .mark("cfg-image")
            )
            self.fields["image"].set_visibility(executor == "docker")
        # Filled by load_executors(): probing the engine may take a moment, off the event loop.
        self.docker_note = ui.label("").classes("text-gray-500 text-sm").mark("cfg-docker")
        self._offer_docker(False)

    def _offer_docker(self, enabled: bool) -> None:
        """Let the Docker option be picked, or grey it out (Quasar's per-option disable)."""
        index = list(self.executor.options).index("docker") if "docker" in self.executor.options else -1
        rule = None if enabled or index < 0 else f"(option) => option.value === {index}"
        self.executor.props.set_optional(":option-disable", rule)

    def _docker_refusal(self) -> str | None:
        """Why Docker cannot be chosen now (None when it can)."""
        if self.page.fn.runtime not in DOCKER_RUNTIMES:
            return f"the Docker executor runs python functions, not {self.page.fn.runtime}"
        if self.docker is None:
            return "the Docker engine is still being checked"
        if not self.docker.available:
            return f"the Docker executor is unavailable on this node: {self.docker.detail}"
        return None

    def _executor_changed(self, e: Any) -> None:
        self.executor.error = None
        if e.value == "docker" and self.page.fn.executor != "docker":
            refusal = self._docker_refusal()
            if refusal is not None:  # the option is disabled in the browser; refuse a value sent anyway
                self.executor.set_value("process")
                self.executor.error = refusal
                return
        self.fields["image"].set_visibility(e.value == "docker")

    def _env_row(self, key: str, value: str) -> None:
        with self.env_box, ui.row().classes("w-full items-center gap-2") as row:
            key_input = ui.input("Name", value=key).mark("cfg-env-key")
            value_input = ui.input("Value", value=value).classes("flex-1").mark("cfg-env-value")
            pair = (key_input, value_input)
            self.env_rows.append(pair)

            def remove() -> None:
                self.env_rows.remove(pair)
                row.delete()

            ui.button(icon="close", on_click=remove).props("flat dense").mark("cfg-env-remove")

    def _env_vars(self) -> dict[str, str] | Failed:
        env: dict[str, str] = {}
        for key_input, value_input in self.env_rows:
            key = (key_input.value or "").strip()
            if not key and not value_input.value:
                continue
            if not key:
                return Failed("Every environment variable needs a name.", "env_vars")
            if key in env:
                return Failed(f"Environment variable {key} is set twice.", "env_vars")
            env[key] = value_input.value or ""
        return env

    async def load_executors(self) -> None:
        """Say whether the Docker executor could be chosen here, and if not, why (the System page's
        runtime list; probing the engine may block, so it runs off the event loop)."""
        runtimes = await asyncio.to_thread(self.page.ctx.platform.runtime_list)
        self.docker = docker = next(info for info in runtimes if info.name == "docker")
        if self.page.fn.runtime not in DOCKER_RUNTIMES:
            self.docker_note.set_text("Docker: python functions only")
            return
        self._offer_docker(docker.available)
        state = f"available ({docker.version})" if docker.available else f"unavailable ({docker.detail})"
        self.docker_note.set_text(f"Docker: {state}")

    def _changes(self) -> dict[str, Any] | Failed:
        fn = self.page.fn
        values: dict[str, Any] = {
            "handler": (self.fields["handler"].value or "").strip(),
            "description": self.fields["description"].value or "",
            "tags": sorted(set(self.fields["tags"].value or [])),
            "network": bool(self.network.value),
        }
        for field, _ in self.NUMBERS:
            number = whole(self.fields[field].value, field)
            if isinstance(number, Failed):
                return number
            values[field] = number
        env = self._env_vars()
        if isinstance(env, Failed):
            return env
        values["env_vars"] = env
        values["executor"] = self.executor.value or fn.executor
        if values["executor"] == "docker":  # a blank image is sent as "": the service says it needs one
            values["image"] = (self.fields["image"].value or "").strip()
        return {k: v for k, v in values.items() if v != getattr(fn, k)}

    async def save(self) -> None:
        clear_errors(self.fields, self.error)
        changes = self._changes()
        if isinstance(changes, Failed):
            show_error(changes, self.fields, self.error)
            return
        if not changes:
            ui.notify("No changes to save")
            return
        fn = await self.page.update(lambda: FunctionUpdate(**changes))
        if isinstance(fn, Failed):
            show_error(fn, self.fields, self.error)
            return
        self.page.changed(fn)
        ui.notify(f"Saved revision {fn.version}", type="positive")

    async def _change_secrets(self, changes: dict[str, str | None]) -> list[str] | Failed:
        platform, principal = self.page.ctx.platform, self.page.ctx.principal
        fn = await attempt(
            platform.functions.change_secrets(principal, self.page.fn.id, changes), notify=False
        )
        if isinstance(fn, Failed):
            return fn
        self.page.changed(fn)
        return await platform.functions.secret_names(principal, fn.id)
