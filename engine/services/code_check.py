"""Syntax checks of a function's files before they are saved, so a typo is reported at its line on save
instead of as an init error on the first invocation. Pure: no I/O, nothing is executed."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from engine.runtimes.wasm_binary import check_file


@dataclass(frozen=True, slots=True)
class SyntaxProblem:
    file: str
    line: int  # 1-based; 0 when there is no line to name (a binary module)
    column: int  # 1-based; 0 when unknown
    message: str

    def describe(self) -> str:
        if self.line <= 0:  # no line to name, e.g. in a binary module
            return f"{self.file}: {self.message}"
        return f"{self.file} line {self.line}: {self.message}"


Checker = Callable[[str, str], "SyntaxProblem | None"]


def _python(path: str, source: str) -> SyntaxProblem | None:
    try:
        with warnings.catch_warnings():  # e.g. invalid escape sequences: legal code, not our business
            warnings.simplefilter("ignore")
            compile(source, path, "exec", dont_inherit=True)
    except SyntaxError as exc:  # IndentationError and TabError are SyntaxErrors too
        return SyntaxProblem(path, exc.lineno or 1, exc.offset or 0, exc.msg)
    except ValueError as exc:  # "source code string cannot contain null bytes"
        return SyntaxProblem(path, 1, 0, str(exc))
    return None


# runtime -> (file suffixes it checks, checker). Runtimes that compile on deploy (go, rust) report their
# errors from the build; others add a checker here when they land.
def _wasm(path: str, source: str) -> SyntaxProblem | None:
    """WAT that does not parse, a binary that is not base64 or not a module, a module that does not
    validate, imports more than WASI preview1 or exports no `_start`. Nothing is compiled or run."""
    problem = check_file(path, source)
    if problem is None:
        return None
    return SyntaxProblem(path, problem.line if problem.column else 0, problem.column, problem.message)


CHECKERS: dict[str, tuple[tuple[str, ...], Checker]] = {
    "python": ((".py",), _python),
    "wasm": ((".wat", ".wasm"), _wasm),
}


def check_syntax(runtime: str, files: Mapping[str, str]) -> list[SyntaxProblem]:
    """The syntax problems of `files` (at most one per file, the first the parser meets), in file order."""
    entry = CHECKERS.get(runtime)
    if entry is None:
        return []
    suffixes, checker = entry
    problems = []
    for path in sorted(files):
        if path.endswith(suffixes) and (problem := checker(path, files[path])) is not None:
            problems.append(problem)
    return problems


def describe(problems: list[SyntaxProblem]) -> str:
    """One message naming every file and line, e.g. "main.py line 3: invalid syntax"."""
    return "; ".join(p.describe() for p in problems)
