"""JSONPath as AWS Step Functions reads it (its Jayway-style subset), written for our data flow.

Supported: `$` (the document), `$$` (the context object), `.name` / `['name']` (also `["name"]` and
backslash escapes in dotted names), `[n]` (negative counts from the end), `[a,b]` unions, `[*]` / `.*`,
slices `[start:end:step]`, deep scan `..name` / `..*` / `..[n]`, and filters `[?(@.x > 1)]` with
== != < <= > >= =~ (regex), `!`, `&&`, `||`, parentheses and bare existence tests (`[?(@.isbn)]`).

A *definite* path (only names and single indexes) gives one value and raises PathError when it matches
nothing; any other path gives a list of every match (possibly empty), as Jayway does.
A *reference* path (ResultPath, and what `write` accepts) is definite and starts at `$`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.workflows.errors import StateError
from engine.workflows.model import RESULT_PATH_MATCH_FAILURE, RUNTIME


class PathError(StateError):
    """A path that matches nothing (or cannot be applied); `error` defaults to States.Runtime and the
    data-flow step that raised it renames it (e.g. States.ParameterPathFailure for Parameters)."""

    def __init__(self, cause: str, error: str = RUNTIME) -> None:
        super().__init__(error, cause)


class PathSyntaxError(ValueError):
    """A path that cannot be parsed; the message says why."""


# --- compiled form ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Field:
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Index:
    indexes: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class _Wild:
    pass


@dataclass(frozen=True, slots=True)
class _Slice:
    start: int | None
    stop: int | None
    step: int | None


@dataclass(frozen=True, slots=True)
class _Filter:
    test: Callable[[Any, Any], bool]  # (item, root) -> keep?


@dataclass(frozen=True, slots=True)
class _Scan:
    inner: Any  # the segment applied at every depth


Segment = _Field | _Index | _Wild | _Slice | _Filter | _Scan


@dataclass(frozen=True, slots=True)
class Compiled:
    context: bool  # starts at $$
    segments: tuple[Segment, ...]

    @property
    def definite(self) -> bool:
        return all(
            (isinstance(s, _Field) and len(s.names) == 1) or (isinstance(s, _Index) and len(s.indexes) == 1)
            for s in self.segments
        )


def parse_prefix(text: str, pos: int) -> tuple[Compiled, int]:
    """Parse the path starting at text[pos] up to the first character that cannot continue it (used
    for paths inside intrinsic function arguments); returns it and the position after it."""
    parser = _Parser(text)
    parser.pos = pos
    if not text.startswith("$", pos):
        raise PathSyntaxError(f"a path starts with $ at position {pos}")
    return parser.parse_path(in_filter=True), parser.pos


@functools.lru_cache(maxsize=2048)
def compile_path(path: str) -> Compiled:
    """Parse a path (cached); raises PathSyntaxError."""
    if not isinstance(path, str):
        raise PathSyntaxError("a path must be a string")
    parser = _Parser(path)
    compiled = parser.parse_path(in_filter=False)
    if parser.pos != len(path):
        raise PathSyntaxError(f"unexpected {path[parser.pos :]!r} at position {parser.pos}")
    return compiled


def check_path(path: str, *, reference: bool = False) -> str | None:
    """None when `path` is a valid path, else the reason. `reference=True` asks for a reference path
    (ResultPath): `$` followed by names and single indexes only, no `$$`, wildcards, slices or filters."""
    try:
        compiled = compile_path(path)
    except PathSyntaxError as exc:
        return str(exc)
    if reference:
        if compiled.context:
            return "a reference path starts with $, not $$"
        if not compiled.definite:
            return "a reference path has only names and single [n] indexes (no *, .., slices, filters)"
    return None


def is_definite(path: str) -> bool:
    return compile_path(path).definite


# --- reading ------------------------------------------------------------------------------------------


def read(path: str, data: Any, context: Mapping[str, Any] | None = None) -> Any:
    """The value `path` selects in `data` (`$$...` reads `context`). A definite path that matches nothing
    raises PathError; an indefinite one returns the list of matches."""
    try:
        compiled = compile_path(path)
    except PathSyntaxError as exc:
        raise PathError(f"invalid path {path!r}: {exc}") from None
    return read_compiled(compiled, path, data, context)


def read_compiled(compiled: Compiled, path: str, data: Any, context: Mapping[str, Any] | None) -> Any:
    """`read` for an already compiled path (`path` is its text, for messages)."""
    if compiled.context:
        if context is None:
            raise PathError(f"{path!r}: no context object here")
        root: Any = context
    else:
        root = data
    if compiled.definite:
        node = root
        for seg in compiled.segments:
            node = _step_definite(seg, node, path)
        return node
    nodes = [root]
    for seg in compiled.segments:
        nodes = _step(seg, nodes, root)
    return nodes


def exists(path: str, data: Any, context: Mapping[str, Any] | None = None) -> bool:
    """Whether a definite path matches (an indefinite one: whether it matches anything)."""
    try:
        value = read(path, data, context)
    except PathError:
        return False
    return bool(value) if not compile_path(path).definite else True


def _step_definite(seg: Segment, node: Any, path: str) -> Any:
    if isinstance(seg, _Field):
        name = seg.names[0]
        if isinstance(node, Mapping) and name in node:
            return node[name]
        raise PathError(f"the path {path!r} matched nothing: no field {name!r}")
    assert isinstance(seg, _Index)
    i = seg.indexes[0]
    if isinstance(node, list) and -len(node) <= i < len(node):
        return node[i]
    raise PathError(f"the path {path!r} matched nothing: no item [{i}]")


def _children(node: Any) -> list[Any]:
    if isinstance(node, Mapping):
        return list(node.values())
    if isinstance(node, list):
        return list(node)
    return []


def _step(seg: Segment, nodes: list[Any], root: Any) -> list[Any]:
    out: list[Any] = []
    for node in nodes:
        if isinstance(seg, _Field):
            if isinstance(node, Mapping):
                out.extend(node[n] for n in seg.names if n in node)
        elif isinstance(seg, _Index):
            if isinstance(node, list):
                out.extend(node[i] for i in seg.indexes if -len(node) <= i < len(node))
        elif isinstance(seg, _Wild):
            out.extend(_children(node))
        elif isinstance(seg, _Slice):
            if isinstance(node, list):
                out.extend(node[seg.start : seg.stop : seg.step])
        elif isinstance(seg, _Filter):
            if isinstance(node, list):
                out.extend(item for item in node if seg.test(item, root))
            elif isinstance(node, Mapping):
                out.extend(item for item in node.values() if seg.test(item, root))
        else:  # _Scan: apply the inner segment to the node and every descendant, document order
            for each in _descendants(node):
                out.extend(_step(seg.inner, [each], root))
    return out


def _descendants(node: Any) -> list[Any]:
    out = [node]
    for child in _children(node):
        out.extend(_descendants(child))
    return out


# --- writing (ResultPath) -----------------------------------------------------------------------------


def write(path: str, data: Any, value: Any) -> Any:
    """ResultPath: a new document, `data` with `value` placed at the reference path. Missing objects on
    the way are created; a step into something that is not an object (or an index out of range) raises
    StateError(States.ResultPathMatchFailure). `data` itself is not modified."""
    reason = check_path(path, reference=True)
    if reason is not None:
        raise StateError(RESULT_PATH_MATCH_FAILURE, f"invalid ResultPath {path!r}: {reason}")
    segments = compile_path(path).segments
    if not segments:
        return value
    return _write(segments, data, value, path)


def _write(segments: tuple[Segment, ...], node: Any, value: Any, path: str) -> Any:
    seg, rest = segments[0], segments[1:]
    if isinstance(seg, _Field):
        name = seg.names[0]
        if not isinstance(node, Mapping):
            raise StateError(
                RESULT_PATH_MATCH_FAILURE,
                f"unable to apply ResultPath {path!r}: the value at {name!r}'s parent is not an object",
            )
        copy = dict(node)
        copy[name] = _write(rest, node.get(name, {}), value, path) if rest else value
        return copy
    assert isinstance(seg, _Index)
    i = seg.indexes[0]
    if not isinstance(node, list) or not -len(node) <= i < len(node):
        raise StateError(
            RESULT_PATH_MATCH_FAILURE, f"unable to apply ResultPath {path!r}: no array item [{i}]"
        )
    items = list(node)
    items[i] = _write(rest, items[i], value, path) if rest else value
    return items


# --- parsing ------------------------------------------------------------------------------------------

_NAME_STOP = set(".[]()=!<>&|,' \"\t\n")
_FILTER_OPS = ("==", "!=", "<=", ">=", "=~", "<", ">")
_MISSING = object()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, message: str) -> PathSyntaxError:
        return PathSyntaxError(f"{message} at position {self.pos}")

    def peek(self, n: int = 1) -> str:
        return self.text[self.pos : self.pos + n]

    def eat(self, s: str) -> bool:
        if self.text.startswith(s, self.pos):
            self.pos += len(s)
            return True
        return False

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t\n":
            self.pos += 1

    # path := ('$' | '$$' | '@') segment*
    def parse_path(self, *, in_filter: bool) -> Compiled:
        if not self.text:
            raise PathSyntaxError("empty path")
        context = False
        if self.eat("$$"):
            context = True
        elif self.eat("$") or (in_filter and self.eat("@")):
            pass
        else:
            raise self.error("a path starts with $")
        segments: list[Segment] = []
        while self.pos < len(self.text):
            if self.eat(".."):
                if self.peek() == "[":
                    segments.append(_Scan(self.bracket()))
                elif self.eat("*"):
                    segments.append(_Scan(_Wild()))
                else:
                    segments.append(_Scan(_Field((self.name(),))))
            elif self.eat("."):
                if self.peek() == "[":  # AWS writes $.abc.['def ghi']
                    segments.append(self.bracket())
                elif self.eat("*"):
                    segments.append(_Wild())
                else:
                    segments.append(_Field((self.name(),)))
            elif self.peek() == "[":
                segments.append(self.bracket())
            elif in_filter:
                break
            else:
                raise self.error(f"unexpected {self.peek()!r}")
        return Compiled(context, tuple(segments))

    def name(self) -> str:
        chars: list[str] = []
        while self.pos < len(self.text):
            c = self.text[self.pos]
            if c == "\\" and self.pos + 1 < len(self.text):
                chars.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            if c in _NAME_STOP:
                break
            chars.append(c)
            self.pos += 1
        if not chars:
            raise self.error("a field name is missing")
        return "".join(chars)

    def quoted(self) -> str:
        quote = self.text[self.pos]
        self.pos += 1
        chars: list[str] = []
        while self.pos < len(self.text):
            c = self.text[self.pos]
            if c == "\\" and self.pos + 1 < len(self.text):
                chars.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            if c == quote:
                self.pos += 1
                return "".join(chars)
            chars.append(c)
            self.pos += 1
        raise self.error("unterminated string")

    def integer(self) -> int | None:
        m = re.compile(r"\s*(-?\d+)\s*").match(self.text, self.pos)
        if not m:
            return None
        self.pos = m.end()
        return int(m.group(1))

    def bracket(self) -> Segment:
        assert self.eat("[")
        self.skip_ws()
        if self.eat("*"):
            seg: Segment = _Wild()
        elif self.peek() in ("'", '"'):
            names = [self.quoted()]
            self.skip_ws()
            while self.eat(","):
                self.skip_ws()
                if self.peek() not in ("'", '"'):
                    raise self.error("expected a quoted name")
                names.append(self.quoted())
                self.skip_ws()
            seg = _Field(tuple(names))
        elif self.eat("?"):
            self.skip_ws()
            if not self.eat("("):
                raise self.error("a filter is written [?(...)]")
            test = self.filter_or()
            self.skip_ws()
            if not self.eat(")"):
                raise self.error("missing ) closing the filter")
            seg = _Filter(test)
        else:
            first = self.integer()
            if self.peek() == ":":
                parts: list[int | None] = [first]
                while self.eat(":"):
                    parts.append(self.integer())
                if len(parts) > 3:
                    raise self.error("a slice is [start:end:step]")
                while len(parts) < 3:
                    parts.append(None)
                if parts[2] == 0:
                    raise self.error("a slice step cannot be 0")
                seg = _Slice(parts[0], parts[1], parts[2])
            elif first is not None:
                indexes = [first]
                while self.eat(","):
                    n = self.integer()
                    if n is None:
                        raise self.error("expected an index")
                    indexes.append(n)
                seg = _Index(tuple(indexes))
            else:
                raise self.error("expected *, an index, a slice, a quoted name or a filter in [...]")
        self.skip_ws()
        if not self.eat("]"):
            raise self.error("missing ]")
        return seg

    # filter := and ('||' and)* ; and := unary ('&&' unary)* ; unary := '!' unary | '(' filter ')' | cmp
    def filter_or(self) -> Callable[[Any, Any], bool]:
        tests = [self.filter_and()]
        while True:
            self.skip_ws()
            if not self.eat("||"):
                break
            tests.append(self.filter_and())
        if len(tests) == 1:
            return tests[0]
        return lambda item, root: any(t(item, root) for t in tests)

    def filter_and(self) -> Callable[[Any, Any], bool]:
        tests = [self.filter_unary()]
        while True:
            self.skip_ws()
            if not self.eat("&&"):
                break
            tests.append(self.filter_unary())
        if len(tests) == 1:
            return tests[0]
        return lambda item, root: all(t(item, root) for t in tests)

    def filter_unary(self) -> Callable[[Any, Any], bool]:
        self.skip_ws()
        if self.peek(2) != "!=" and self.eat("!"):
            inner = self.filter_unary()
            return lambda item, root: not inner(item, root)
        if self.eat("("):
            inner = self.filter_or()
            self.skip_ws()
            if not self.eat(")"):
                raise self.error("missing )")
            return inner
        left = self.operand()
        self.skip_ws()
        op = next((o for o in _FILTER_OPS if self.text.startswith(o, self.pos)), None)
        if op is None:
            return lambda item, root: left(item, root) is not _MISSING
        self.pos += len(op)
        self.skip_ws()
        if op == "=~":
            pattern = self.regex()
            return lambda item, root: isinstance(v := left(item, root), str) and bool(pattern.search(v))
        right = self.operand()
        return lambda item, root: _compare(op, left(item, root), right(item, root))

    def regex(self) -> re.Pattern[str]:
        if not self.eat("/"):
            raise self.error("=~ takes a /regex/")
        end = self.pos
        while end < len(self.text) and self.text[end] != "/":
            end += 2 if self.text[end] == "\\" else 1
        if end >= len(self.text):
            raise self.error("unterminated /regex/")
        body = self.text[self.pos : end]
        self.pos = end + 1
        flags = re.IGNORECASE if self.eat("i") else 0
        try:
            return re.compile(body, flags)
        except re.error as exc:
            raise self.error(f"bad regex: {exc}") from None

    def operand(self) -> Callable[[Any, Any], Any]:
        self.skip_ws()
        c = self.peek()
        if c in ("@", "$"):
            is_item = c == "@"
            sub = self.parse_path(in_filter=True)
            if sub.context:
                raise self.error("$$ is not available inside a filter")
            return lambda item, root: _eval_operand(sub, item if is_item else root)
        if c in ("'", '"'):
            text = self.quoted()
            return lambda item, root: text
        m = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?|true\b|false\b|null\b").match(self.text, self.pos)
        if not m:
            raise self.error("expected @, $, a string, a number, true, false or null")
        self.pos = m.end()
        word = m.group(0)
        literal: Any = {"true": True, "false": False, "null": None}.get(word, _MISSING)
        if literal is _MISSING:
            literal = float(word) if m.group(1) or m.group(2) else int(word)
        return lambda item, root: literal


def _eval_operand(compiled: Compiled, node: Any) -> Any:
    if compiled.definite:
        for seg in compiled.segments:
            try:
                node = _step_definite(seg, node, "@")
            except PathError:
                return _MISSING
        return node
    nodes = [node]
    for seg in compiled.segments:
        nodes = _step(seg, nodes, node)
    return nodes


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _compare(op: str, a: Any, b: Any) -> bool:
    if a is _MISSING or b is _MISSING:
        return False
    if op == "==":
        return _json_equal(a, b)
    if op == "!=":
        return not _json_equal(a, b)
    if _is_number(a) and _is_number(b):
        pass
    elif not (isinstance(a, str) and isinstance(b, str)):
        return False
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b
    if op == ">":
        return a > b
    return a >= b


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b
