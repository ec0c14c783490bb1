"""A function's Configuration tab: handler, description, tags, limits and retries, environment variables
(saved together as one update) and its secrets (set and removed one at a time, values never shown)."""

from __future__ import annotations

import asyncio
from typing import Any

from nicegui import ui

from components.code_panel import FunctionPage
from components.feedback import Failed, attempt
from components.form_errors import LABELS, clear_errors, show_error, whole
from components.layer_panel import LayerPanel
from components.secrets_editor import SecretsEditor
from engine.runtimes.docker_executor import detect_docker
from engine.services.function_schemas import FunctionUpdate


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
            with ui.row().classes("items-center gap-2 text-sm"):
                ui.label("Executor:").classes("text-gray-500")
                executor = "sandboxed process" if fn.executor == "process" else fn.executor
                ui.label(executor).mark("cfg-executor")
                # Filled by load_executors(): probing the engine may take a moment, off the event loop.
                self.docker_note = ui.label("").classes("text-gray-500").mark("cfg-docker")
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
        """Say whether the Docker executor could be chosen here, and if not, why."""
        docker = await asyncio.to_thread(detect_docker)
        self.docker_note.set_text(
            "· Docker: available" if docker.available else f"· Docker: unavailable ({docker.detail})"
        )

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
