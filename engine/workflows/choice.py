"""Choice rules (AWS Step Functions' Choice state, in the original Nimbus's snake_case).

A rule is either a data test, `{"variable": "$.x", "<comparator>": value}` with exactly one comparator,
or a boolean combination `{"and": [rules]}`, `{"or": [rules]}`, `{"not": rule}`. Top-level rules carry
`next`. Comparators: string_/numeric_/timestamp_ equals, less_than, greater_than, less_than_equals,
greater_than_equals (each with a `_path` variant whose value is a path into the input), boolean_equals(
_path), string_matches (`*` wildcard, `\\*` a literal star, `\\\\` a backslash), and the type tests
is_null, is_present, is_numeric, is_string, is_boolean, is_timestamp (value true or false).
The original's string_/numeric_/timestamp_not_equals are accepted too (AWS writes them with `not`).

As in AWS: comparing values of the wrong type is simply false; a `variable` (or `*_path` operand) that is
not in the input fails the state with States.Runtime except under is_present.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from engine.workflows import jsonpath
from engine.workflows.dataflow import parse_timestamp
from engine.workflows.errors import StateError
from engine.workflows.model import NO_CHOICE_MATCHED, RUNTIME, Problem, State

_ORDER_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "equals": lambda a, b: a == b,
    "not_equals": lambda a, b: a != b,
    "less_than": lambda a, b: a < b,
    "greater_than": lambda a, b: a > b,
    "less_than_equals": lambda a, b: a <= b,
    "greater_than_equals": lambda a, b: a >= b,
}
_KINDS = ("string", "numeric", "timestamp")

# comparator name -> (kind, op); kinds: string, numeric, timestamp, boolean, matches, type
COMPARATORS: dict[str, tuple[str, str]] = {}
for _kind in _KINDS:
    for _op in _ORDER_OPS:
        COMPARATORS[f"{_kind}_{_op}"] = (_kind, _op)
        if _op != "not_equals":
            COMPARATORS[f"{_kind}_{_op}_path"] = (_kind, _op)
COMPARATORS["boolean_equals"] = ("boolean", "equals")
COMPARATORS["boolean_equals_path"] = ("boolean", "equals")
COMPARATORS["string_matches"] = ("matches", "matches")
for _test in ("is_null", "is_present", "is_numeric", "is_string", "is_boolean", "is_timestamp"):
    COMPARATORS[_test] = ("type", _test)

COMBINATORS = ("and", "or", "not")
_ABSENT = object()


def choose(state: State, data: Any) -> str:
    """The name of the next state: the first rule that matches `data` (the Choice's effective input),
    else `default`; StateError(States.NoChoiceMatched) when neither."""
    for rule in state.choices:
        if evaluate(rule, data):
            return str(rule["next"])
    if state.default:
        return state.default
    raise StateError(NO_CHOICE_MATCHED, f"no choice rule of state {state.name!r} matched, and no default")


def evaluate(rule: Mapping[str, Any], data: Any) -> bool:
    """Whether one rule (a data test or and/or/not) matches."""
    if "and" in rule:
        return all(evaluate(r, data) for r in rule["and"])
    if "or" in rule:
        return any(evaluate(r, data) for r in rule["or"])
    if "not" in rule:
        return not evaluate(rule["not"], data)
    comparator = next((k for k in rule if k in COMPARATORS), None)
    if comparator is None:
        raise StateError(RUNTIME, "a choice rule has no comparator")
    variable = rule.get("variable")
    kind, op = COMPARATORS[comparator]
    value = _lookup(variable, data)
    expected = rule[comparator]
    if kind == "type":
        return _type_test(op, value) == bool(expected)
    if value is _ABSENT:
        raise StateError(
            RUNTIME, f"invalid path {variable!r}: the choice rule's variable is not in the input"
        )
    if comparator.endswith("_path"):
        expected = _lookup(expected, data)
        if expected is _ABSENT:
            raise StateError(RUNTIME, f"invalid path {rule[comparator]!r} in {comparator}: not in the input")
    return _compare(kind, op, value, expected)


def _lookup(path: Any, data: Any) -> Any:
    if not isinstance(path, str):
        raise StateError(RUNTIME, f"a choice rule's path must be a string, not {path!r}")
    try:
        return jsonpath.read(path, data)
    except jsonpath.PathError:
        return _ABSENT


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _as_timestamp(v: Any) -> datetime | None:
    if not isinstance(v, str):
        return None
    try:
        return parse_timestamp(v)
    except ValueError:
        return None


def _type_test(test: str, value: Any) -> bool:
    if test == "is_present":
        return value is not _ABSENT
    if value is _ABSENT:
        return False  # AWS: the other type tests are false for a missing variable
    if test == "is_null":
        return value is None
    if test == "is_numeric":
        return _is_number(value)
    if test == "is_string":
        return isinstance(value, str)
    if test == "is_boolean":
        return isinstance(value, bool)
    return _as_timestamp(value) is not None  # is_timestamp


def _compare(kind: str, op: str, value: Any, expected: Any) -> bool:
    if kind == "string":
        return isinstance(value, str) and isinstance(expected, str) and _ORDER_OPS[op](value, expected)
    if kind == "numeric":
        if not (_is_number(value) and _is_number(expected)):
            return False
        return _ORDER_OPS[op](value, expected)
    if kind == "boolean":
        return isinstance(value, bool) and isinstance(expected, bool) and value is expected
    if kind == "timestamp":
        a, b = _as_timestamp(value), _as_timestamp(expected)
        return a is not None and b is not None and _ORDER_OPS[op](a, b)
    # matches
    return isinstance(value, str) and isinstance(expected, str) and bool(_glob(expected).fullmatch(value))


@functools.lru_cache(maxsize=512)
def _glob(pattern: str) -> re.Pattern[str]:
    """AWS StringMatches: `*` is any run of characters; `\\*` is a star and `\\\\` a backslash."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "*\\":
            out.append(re.escape(pattern[i + 1]))
            i += 2
        elif c == "*":
            out.append(".*")
            i += 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out), re.DOTALL)


# --- validation ---------------------------------------------------------------------------------------


def check_rule(rule: Any, path: str, *, top: bool = True) -> list[Problem]:
    """Every problem with one choice rule (nested rules too), each with its path, e.g.
    Problem("states.Check.choices[1].numeric_equals", "must be a number")."""
    problems: list[Problem] = []
    _check(rule, path, top, problems)
    return problems


def _check(rule: Any, path: str, top: bool, problems: list[Problem]) -> None:
    if not isinstance(rule, Mapping):
        problems.append(Problem(path, "a choice rule must be a JSON object"))
        return
    combinators = [k for k in COMBINATORS if k in rule]
    comparators = [k for k in rule if k in COMPARATORS]
    allowed = set(COMPARATORS) | set(COMBINATORS) | {"variable", "comment"} | ({"next"} if top else set())
    for key in rule:
        if key not in allowed:
            message = (
                "only a top-level choice rule has next" if key == "next" else "not a field of a choice rule"
            )
            problems.append(Problem(f"{path}.{key}", message))
    if combinators:
        if len(combinators) > 1 or comparators or "variable" in rule:
            problems.append(Problem(path, "a rule is either and, or, not, or a variable with one comparator"))
        for key in combinators:
            _check_combinator(key, rule[key], f"{path}.{key}", problems)
        return
    variable = rule.get("variable")
    if variable is None:
        problems.append(Problem(f"{path}.variable", "required: the JSONPath of the value to test"))
    else:
        reason = jsonpath.check_path(variable) if isinstance(variable, str) else "must be a JSONPath string"
        if reason:
            problems.append(Problem(f"{path}.variable", f"bad JSONPath: {reason}"))
    if not comparators:
        problems.append(Problem(path, "no comparator: give one, e.g. string_equals or numeric_greater_than"))
        return
    if len(comparators) > 1:
        problems.append(
            Problem(path, f"one comparator per rule, not {len(comparators)}: {', '.join(comparators)}")
        )
    for name in comparators:
        message = _check_value(name, rule[name])
        if message:
            problems.append(Problem(f"{path}.{name}", message))


def _check_combinator(key: str, value: Any, path: str, problems: list[Problem]) -> None:
    if key == "not":
        _check(value, path, False, problems)
        return
    if not isinstance(value, list) or not value:
        problems.append(Problem(path, f"{key} takes a list of at least one rule"))
        return
    for i, sub in enumerate(value):
        _check(sub, f"{path}[{i}]", False, problems)


def _check_value(name: str, value: Any) -> str | None:
    kind, _ = COMPARATORS[name]
    if name.endswith("_path"):
        if not isinstance(value, str):
            return "must be a JSONPath string"
        reason = jsonpath.check_path(value)
        return f"bad JSONPath: {reason}" if reason else None
    if kind in ("string", "matches"):
        return None if isinstance(value, str) else "must be a string"
    if kind == "numeric":
        return None if _is_number(value) else "must be a number"
    if kind in ("boolean", "type"):
        return None if isinstance(value, bool) else "must be true or false"
    if not isinstance(value, str) or _as_timestamp(value) is None:
        return "must be an ISO 8601 timestamp with a time zone, e.g. 2024-01-31T12:00:00Z"
    return None
