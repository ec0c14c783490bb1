"""A function's Code tab: its files in an editor, dirty tracking, save (Ctrl/Cmd+S), and a syntax error
(or a Go/Rust compiler error, with the build's live log below) shown on its line. Also `FunctionPage`,
what the detail page's panels need of the page that holds them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from nicegui import ui

from components.build_log import BuildLogPanel, build_problem
from components.feedback import Failed
from components.frame import PageContext
from data.models import Function
from engine.services.code_check import check_syntax
from engine.services.function_schemas import FunctionUpdate, entry_file

LANGUAGES = {"python": "Python", "nodejs": "JavaScript", "go": "Go", "rust": "Rust", "wasm": "WebAssembly"}


class FunctionPage(Protocol):
    """The function detail page as its panels see it (app/pages/function_detail.py)."""

    ctx: PageContext
    fn: Function
    can_write: bool
    theme: str

    def changed(self, fn: Function) -> None:
        """The function was saved: remember the new state and show it."""

    async def update(self, make: Callable[[], FunctionUpdate]) -> Function | Failed:
        """Validate the request `make` builds and apply it to the function."""


class CodePanel:
    def __init__(self, page: FunctionPage) -> None:
        self.page = page
        fn = page.fn
        self.drafts = dict(fn.files)
        self.current = entry_file(fn.runtime, fn.handler, fn.files)
        self.dirty = False
        with ui.row().classes("w-full items-center gap-3"):
            self.file = ui.select(
                sorted(self.drafts), value=self.current, label="File", on_change=self._switch
            )
            self.file.mark("code-file").classes("min-w-[200px]").set_visibility(len(self.drafts) > 1)
            self.dirty_badge = ui.badge("Unsaved changes", color="orange").mark("fn-dirty")
            self.dirty_badge.set_visibility(False)
            ui.space()
            self.save_button = ui.button("Save", icon="save", on_click=self.save).mark("fn-save")
            self.save_button.tooltip("Ctrl/Cmd+S").set_enabled(False)
        self.problem = ui.label("").classes("text-red-600 font-mono text-sm").mark("code-error")
        self.problem.set_visibility(False)
        self.editor = (
            ui.codemirror(
                self.drafts[self.current],
                language=LANGUAGES.get(fn.runtime),
                theme=page.theme,
                on_change=self._edited,
                keymap={"Mod-s": self.save},
            )
            .classes("w-full h-[60vh] border rounded")
            .mark("code-editor")
        )
        self.editor.set_enabled(page.can_write)
        # Go and Rust code is compiled on save: its build log streams in below the editor.
        compiled = fn.runtime in page.ctx.platform.builds.toolchains
        self.build_log = BuildLogPanel(page.ctx, function_id=fn.id) if compiled else None

    def _edited(self, e: Any) -> None:
        self.drafts[self.current] = e.value or ""
        self._set_dirty(self.drafts != self.page.fn.files)

    def _set_dirty(self, dirty: bool) -> None:
        if dirty != self.dirty:
            self.dirty = dirty
            self.dirty_badge.set_visibility(dirty)
            self.save_button.set_enabled(dirty and self.page.can_write)
            ui.run_javascript(f"window.nimbusDirty = {'true' if dirty else 'false'}")

    def _switch(self, e: Any) -> None:
        if e.value and e.value != self.current:
            self.current = e.value
            self.editor.set_value(self.drafts[self.current])
            self.editor.decorations = []
            self.editor.line_tooltips = {}

    async def save(self, *_: Any) -> None:
        if not self.dirty:
            ui.notify("No unsaved changes")
            return
        files = dict(self.drafts)
        fn = await self.page.update(lambda: FunctionUpdate(files=files))
        if isinstance(fn, Failed):
            self._show_problem(fn, files)
            return
        self.problem.set_visibility(False)
        self.editor.decorations = []
        self.editor.line_tooltips = {}
        self.page.changed(fn)
        self._set_dirty(self.drafts != fn.files)
        ui.notify(f"Saved revision {fn.version}", type="positive")

    def _show_problem(self, failed: Failed, files: dict[str, str]) -> None:
        """Say what is wrong; for a syntax error, go to its file and mark its line."""
        self.problem.set_text(failed.message)
        self.problem.set_visibility(True)
        problems = check_syntax(self.page.fn.runtime, files) if failed.field == "code" else []
        built = build_problem(failed.message, files) if failed.field == "code" and not problems else None
        problems = problems or ([built] if built else [])
        if not problems:
            ui.notify(failed.message, type="negative", multi_line=True)
            return
        first = next((p for p in problems if p.file == self.current), problems[0])
        if first.file != self.current:
            self.file.set_value(first.file)  # switches the editor to that file
        line = max(1, min(first.line, files[first.file].count("\n") + 1))
        self.editor.decorations = [{"kind": "line", "line": line, "class": "nimbus-error-line"}]
        self.editor.line_tooltips = {line: first.message}
        self.editor.reveal_line(line)
