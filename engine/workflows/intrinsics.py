"""AWS Step Functions intrinsic functions (`"key.$": "States.Format('{}', $.name)"`).

An expression is `States.Name(arg, ...)`; an argument is a 'string' (escapes \\' \\{ \\} \\\\), a number,
true/false/null, a path (`$.x`, `$$.Execution.Id`) or another intrinsic (AWS allows 10 levels).
Failures raise StateError(States.IntrinsicFailure), as AWS does; `check` reports syntax problems for
validation without running anything.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import random
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.workflows import jsonpath
from engine.workflows.errors import StateError
from engine.workflows.model import INTRINSIC_FAILURE

MAX_NESTING = 10
MAX_STRING = 10_000
MAX_RANGE = 1000
_INT32 = (-2_147_483_648, 2_147_483_647)


class IntrinsicSyntaxError(ValueError):
    pass


def is_intrinsic(text: Any) -> bool:
    return isinstance(text, str) and text.startswith("States.")


# --- parsed form --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Literal:
    value: Any
    raw: str | None = None  # a string literal's text with escapes kept (States.Format needs it)


@dataclass(frozen=True, slots=True)
class _PathArg:
    text: str
    compiled: jsonpath.Compiled


@dataclass(frozen=True, slots=True)
class _Call:
    name: str
    args: tuple[_Literal | _PathArg | _Call, ...]


def parse(expression: str) -> _Call:
    parser = _Parser(expression)
    call = parser.call(depth=1)
    parser.skip_ws()
    if parser.pos != len(expression):
        raise IntrinsicSyntaxError(f"unexpected {expression[parser.pos :]!r} after the call")
    return call


def check(expression: str) -> str | None:
    """None when `expression` is a well-formed call of a known intrinsic with a valid arity, else why."""
    try:
        _check_call(parse(expression))
    except IntrinsicSyntaxError as exc:
        return str(exc)
    return None


def _check_call(call: _Call) -> None:
    spec = FUNCTIONS.get(call.name)
    if spec is None:
        raise IntrinsicSyntaxError(f"unknown intrinsic function {call.name}")
    low, high = spec[1], spec[2]
    if len(call.args) < low or (high is not None and len(call.args) > high):
        want = f"{low}" if low == high else f"{low} to {high}" if high is not None else f"{low} or more"
        raise IntrinsicSyntaxError(f"{call.name} takes {want} arguments, not {len(call.args)}")
    for arg in call.args:
        if isinstance(arg, _Call):
            _check_call(arg)


def evaluate(expression: str, data: Any, context: Mapping[str, Any] | None = None) -> Any:
    """Run an intrinsic expression against the state's data (and the context object for `$$`)."""
    try:
        call = parse(expression)
    except IntrinsicSyntaxError as exc:
        raise StateError(INTRINSIC_FAILURE, f"{expression!r}: {exc}") from None
    return _run(call, data, context)


def _run(call: _Call, data: Any, context: Mapping[str, Any] | None) -> Any:
    spec = FUNCTIONS.get(call.name)
    if spec is None:
        raise StateError(INTRINSIC_FAILURE, f"unknown intrinsic function {call.name}")
    fn, low, high = spec
    if len(call.args) < low or (high is not None and len(call.args) > high):
        raise StateError(INTRINSIC_FAILURE, f"{call.name}: wrong number of arguments ({len(call.args)})")
    values: list[Any] = []
    for arg in call.args:
        if isinstance(arg, _Call):
            values.append(_run(arg, data, context))
        elif isinstance(arg, _PathArg):
            try:
                values.append(jsonpath.read_compiled(arg.compiled, arg.text, data, context))
            except StateError as exc:
                raise StateError(INTRINSIC_FAILURE, f"{call.name}: {exc.cause}") from None
        else:
            values.append(arg)  # Format needs the raw text of a literal template
    try:
        return fn(*values)
    except StateError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        raise StateError(INTRINSIC_FAILURE, f"{call.name}: {exc}") from None


# --- the functions ------------------------------------------------------------------------------------


def _v(arg: Any) -> Any:
    return arg.value if isinstance(arg, _Literal) else arg


def _fail(message: str) -> StateError:
    return StateError(INTRINSIC_FAILURE, message)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _int(v: Any, what: str) -> int:
    if not _is_number(v):
        raise _fail(f"{what} must be a number, not {json.dumps(v)}")
    return round(v)  # AWS rounds a non-integer to the nearest integer


def _array(v: Any, what: str) -> list[Any]:
    if not isinstance(v, list):
        raise _fail(f"{what} must be an array")
    return v


def _string(v: Any, what: str) -> str:
    if not isinstance(v, str):
        raise _fail(f"{what} must be a string")
    return v


def _format(template: Any, *args: Any) -> str:
    if isinstance(template, _Literal):
        raw = template.raw if template.raw is not None else str(template.value)
    else:
        raw = _string(template, "States.Format's template")  # from a path: escapes still apply
    values = [_v(a) for a in args]
    out: list[str] = []
    used = 0
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == "\\" and i + 1 < len(raw):
            out.append(raw[i + 1])
            i += 2
        elif raw.startswith("{}", i):
            if used >= len(values):
                raise _fail("States.Format has more {} than arguments")
            out.append(_format_value(values[used]))
            used += 1
            i += 2
        else:
            out.append(c)
            i += 1
    if used != len(values):
        raise _fail(f"States.Format has {used} {{}} but {len(values)} arguments")
    return "".join(out)


def _format_value(v: Any) -> str:
    if isinstance(v, str):
        return v
    if v is None or isinstance(v, bool) or _is_number(v):
        return json.dumps(v)
    raise _fail("States.Format arguments must be strings, numbers, booleans or null")


def _plain(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a function that takes plain values (literals unwrapped)."""
    return lambda *args: fn(*(_v(a) for a in args))


def _string_to_json(s: Any) -> Any:
    try:
        return json.loads(_string(s, "States.StringToJson's argument"))
    except json.JSONDecodeError as exc:
        raise _fail(f"States.StringToJson: not JSON ({exc.msg})") from None


def _json_to_string(v: Any) -> str:
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def _partition(arr: Any, size: Any) -> list[list[Any]]:
    items = _array(arr, "States.ArrayPartition's first argument")
    n = _int(size, "the chunk size")
    if n <= 0:
        raise _fail("States.ArrayPartition: the chunk size must be a positive integer")
    return [items[i : i + n] for i in range(0, len(items), n)]


def _contains(arr: Any, value: Any) -> bool:
    return any(_same(item, value) for item in _array(arr, "States.ArrayContains's first argument"))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


def _range(first: Any, last: Any, step: Any) -> list[int]:
    a, b, s = _int(first, "first"), _int(last, "last"), _int(step, "step")
    if s == 0:
        raise _fail("States.ArrayRange: the step must not be 0")
    count = max(0, (b - a) // s + 1)
    if count > MAX_RANGE:
        raise _fail(f"States.ArrayRange: more than {MAX_RANGE} items")
    return list(range(a, b + (1 if s > 0 else -1), s))


def _get_item(arr: Any, index: Any) -> Any:
    items = _array(arr, "States.ArrayGetItem's first argument")
    i = _int(index, "the index")
    if not 0 <= i < len(items):
        raise _fail(f"States.ArrayGetItem: index {i} is out of range (length {len(items)})")
    return items[i]


def _unique(arr: Any) -> list[Any]:
    out: list[Any] = []
    for item in _array(arr, "States.ArrayUnique's argument"):
        if not any(_same(item, seen) for seen in out):
            out.append(item)
    return out


def _b64encode(s: Any) -> str:
    text = _string(s, "States.Base64Encode's argument")
    if len(text) > MAX_STRING:
        raise _fail(f"States.Base64Encode: more than {MAX_STRING} characters")
    return base64.b64encode(text.encode()).decode()


def _b64decode(s: Any) -> str:
    text = _string(s, "States.Base64Decode's argument")
    if len(text) > MAX_STRING:
        raise _fail(f"States.Base64Decode: more than {MAX_STRING} characters")
    try:
        return base64.b64decode(text, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise _fail(f"States.Base64Decode: not Base64 text ({exc})") from None


_HASHES = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}


def _hash(data: Any, algorithm: Any) -> str:
    name = _HASHES.get(algorithm) if isinstance(algorithm, str) else None
    if name is None:
        raise _fail(f"States.Hash: the algorithm is one of {', '.join(_HASHES)}")
    text = data if isinstance(data, str) else _json_to_string(data)
    if len(text) > MAX_STRING:
        raise _fail(f"States.Hash: more than {MAX_STRING} characters")
    return hashlib.new(name, text.encode()).hexdigest()


def _merge(a: Any, b: Any, deep: Any) -> dict[str, Any]:
    if not isinstance(a, Mapping) or not isinstance(b, Mapping):
        raise _fail("States.JsonMerge merges two JSON objects")
    if deep is not False:
        raise _fail("States.JsonMerge: only shallow merging is supported (the third argument is false)")
    return {**a, **b}


def _math_random(start: Any, end: Any, seed: Any = None) -> int:
    low, high = _int(start, "start"), _int(end, "end")
    if low >= high:
        raise _fail("States.MathRandom: start must be less than end")
    rng = random.Random(_int(seed, "seed")) if seed is not None else random
    return rng.randrange(low, high)  # start inclusive, end exclusive (AWS)


def _math_add(a: Any, b: Any) -> int:
    x, y = _int(a, "the first number"), _int(b, "the second number")
    for n in (x, y):
        if not _INT32[0] <= n <= _INT32[1]:
            raise _fail("States.MathAdd takes integers from -2147483648 to 2147483647")
    return x + y


def _split(s: Any, delimiters: Any) -> list[str]:
    text = _string(s, "States.StringSplit's first argument")
    chars = _string(delimiters, "States.StringSplit's delimiter")
    if not chars:
        return [text]
    parts = re.split("[" + re.escape(chars) + "]", text)
    return [p for p in parts if p]  # each delimiter character splits; empty pieces are dropped


def _array_fn(*args: Any) -> list[Any]:
    return list(args)


# name -> (function, min args, max args or None)
FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int | None]] = {
    "States.Format": (_format, 1, None),
    "States.StringToJson": (_plain(_string_to_json), 1, 1),
    "States.JsonToString": (_plain(_json_to_string), 1, 1),
    "States.Array": (_plain(_array_fn), 0, None),
    "States.ArrayPartition": (_plain(_partition), 2, 2),
    "States.ArrayContains": (_plain(_contains), 2, 2),
    "States.ArrayRange": (_plain(_range), 3, 3),
    "States.ArrayGetItem": (_plain(_get_item), 2, 2),
    "States.ArrayLength": (_plain(lambda a: len(_array(a, "States.ArrayLength's argument"))), 1, 1),
    "States.ArrayUnique": (_plain(_unique), 1, 1),
    "States.Base64Encode": (_plain(_b64encode), 1, 1),
    "States.Base64Decode": (_plain(_b64decode), 1, 1),
    "States.Hash": (_plain(_hash), 2, 2),
    "States.JsonMerge": (_plain(_merge), 3, 3),
    "States.MathRandom": (_plain(_math_random), 2, 3),
    "States.MathAdd": (_plain(_math_add), 2, 2),
    "States.StringSplit": (_plain(_split), 2, 2),
    "States.UUID": (_plain(lambda: str(uuid.uuid4())), 0, 0),
}


# --- parser -------------------------------------------------------------------------------------------

_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")
_NAME = re.compile(r"States\.[A-Za-z0-9]+")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t\n":
            self.pos += 1

    def call(self, depth: int) -> _Call:
        if depth > MAX_NESTING:
            raise IntrinsicSyntaxError(f"intrinsic functions nest at most {MAX_NESTING} deep")
        self.skip_ws()
        m = _NAME.match(self.text, self.pos)
        if not m:
            raise IntrinsicSyntaxError(f"expected States.<Function>( at position {self.pos}")
        self.pos = m.end()
        self.skip_ws()
        if not self.text.startswith("(", self.pos):
            raise IntrinsicSyntaxError(f"expected ( after {m.group(0)}")
        self.pos += 1
        args: list[_Literal | _PathArg | _Call] = []
        self.skip_ws()
        if self.text.startswith(")", self.pos):
            self.pos += 1
            return _Call(m.group(0), ())
        while True:
            args.append(self.argument(depth))
            self.skip_ws()
            if self.text.startswith(",", self.pos):
                self.pos += 1
                continue
            if self.text.startswith(")", self.pos):
                self.pos += 1
                return _Call(m.group(0), tuple(args))
            raise IntrinsicSyntaxError(f"expected , or ) at position {self.pos}")

    def argument(self, depth: int) -> _Literal | _PathArg | _Call:
        self.skip_ws()
        rest = self.text[self.pos :]
        if rest.startswith("States."):
            return self.call(depth + 1)
        if rest.startswith("'"):
            return self.string()
        if rest.startswith("$"):
            start = self.pos
            try:
                compiled, end = jsonpath.parse_prefix(self.text, self.pos)
            except jsonpath.PathSyntaxError as exc:
                raise IntrinsicSyntaxError(f"bad path argument: {exc}") from None
            self.pos = end
            return _PathArg(self.text[start:end], compiled)
        for word, value in (("true", True), ("false", False), ("null", None)):
            if rest.startswith(word):
                self.pos += len(word)
                return _Literal(value)
        m = _NUMBER.match(self.text, self.pos)
        if m:
            self.pos = m.end()
            text = m.group(0)
            return _Literal(float(text) if m.group(1) or m.group(2) else int(text))
        raise IntrinsicSyntaxError(f"expected an argument at position {self.pos}")

    def string(self) -> _Literal:
        self.pos += 1
        start = self.pos
        chars: list[str] = []
        while self.pos < len(self.text):
            c = self.text[self.pos]
            if c == "\\":
                if self.pos + 1 >= len(self.text) or self.text[self.pos + 1] not in "'{}\\":
                    raise IntrinsicSyntaxError(f"an open escape \\ at position {self.pos}")
                chars.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            if c == "'":
                raw = self.text[start : self.pos]
                self.pos += 1
                return _Literal("".join(chars), raw)
            chars.append(c)
            self.pos += 1
        raise IntrinsicSyntaxError("an unterminated 'string'")
