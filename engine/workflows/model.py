"""A workflow definition as typed, immutable objects: what the validator, the runner and the editor share.

The stored format is the original Nimbus's JSON (snake_case keys, AWS Step Functions semantics):
`{"start_at": "A", "states": {"A": {...}}, "timeout_sec": 300}`. `parse_definition` turns that JSON into a
`Definition`, collecting every structural problem (with its path) instead of stopping at the first;
semantic checks (reachability, cycles, JSONPath syntax, functions that exist) live in validate.py.
Amazon States Language (PascalCase) is converted to this format by asl.py before parsing.

JSONPath fields keep AWS's three cases: absent -> "$" (the default), a path string, or JSON null
(`None` here: InputPath null = {}, ResultPath null = discard the result, OutputPath null = {}).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

StateType = Literal["task", "choice", "wait", "parallel", "map", "pass", "succeed", "fail"]
STATE_TYPES: Final[tuple[str, ...]] = ("task", "choice", "wait", "parallel", "map", "pass", "succeed", "fail")
TERMINAL_TYPES: Final[frozenset[str]] = frozenset({"succeed", "fail"})
NO_NEXT_TYPES: Final[frozenset[str]] = frozenset({"choice", "succeed", "fail"})  # no next/end of their own

# Error names the engine raises (AWS's names, so Retry/Catch written for AWS work unchanged).
ALL: Final = "States.ALL"
TASK_FAILED: Final = "States.TaskFailed"
TIMEOUT: Final = "States.Timeout"
RUNTIME: Final = "States.Runtime"
NO_CHOICE_MATCHED: Final = "States.NoChoiceMatched"
BRANCH_FAILED: Final = "States.BranchFailed"
PARAMETER_PATH_FAILURE: Final = "States.ParameterPathFailure"
RESULT_PATH_MATCH_FAILURE: Final = "States.ResultPathMatchFailure"
INTRINSIC_FAILURE: Final = "States.IntrinsicFailure"
DATA_LIMIT_EXCEEDED: Final = "States.DataLimitExceeded"
FAIL: Final = "States.Fail"
CANCELLED: Final = "States.Cancelled"

DEFAULT_TIMEOUT_SEC: Final = 3600
MAX_TIMEOUT_SEC: Final = 86400


class _Missing:
    """Marks a field that was absent (as opposed to present with JSON null)."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a definition, e.g. Problem("states.Charge.next", "no state named 'Chrage'")."""

    path: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


class DefinitionError(ValueError):
    """A definition that cannot be used; `problems` lists every problem found, each with its path."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.path}: {p.message}" for p in problems) or "invalid definition")


@dataclass(frozen=True, slots=True)
class RetryRule:
    """AWS Retrier: `max_attempts` retries after the first attempt (0 = never retry); the delay before
    retry n (1-based) is interval_seconds * backoff_rate**(n-1), capped by max_delay_seconds."""

    error_equals: tuple[str, ...]
    max_attempts: int = 3
    interval_seconds: float = 1.0
    backoff_rate: float = 2.0
    max_delay_seconds: float | None = None
    jitter: bool = False  # AWS JitterStrategy FULL


@dataclass(frozen=True, slots=True)
class CatchRule:
    """AWS Catcher: on a matching error go to `next`, with the error output {"Error", "Cause"} placed into
    the state's raw input at `result_path` ("$" = replace it, None = discard the error)."""

    error_equals: tuple[str, ...]
    next: str
    result_path: str | None = "$"


@dataclass(frozen=True, slots=True)
class State:
    name: str
    type: StateType
    next: str | None = None
    end: bool = False
    comment: str = ""
    # data flow, in AWS's order: input_path -> parameters -> [run] -> result_selector -> result_path
    # -> output_path
    input_path: str | None = "$"
    parameters: Any = MISSING  # a JSON template; keys ending in ".$" take a path or intrinsic
    result_selector: Any = MISSING
    result_path: str | None = "$"
    output_path: str | None = "$"
    retry: tuple[RetryRule, ...] = ()
    catch: tuple[CatchRule, ...] = ()
    timeout_sec: float | None = None  # enforced for task, parallel, map
    # task
    function_id: str = ""  # a function id or name
    environment: str = ""
    function_version: int | None = None
    # choice: rules as parsed JSON (snake_case); choice.py compiles and evaluates them
    choices: tuple[Mapping[str, Any], ...] = ()
    default: str | None = None
    # wait (exactly one of these)
    seconds: float | None = None
    timestamp: str | None = None
    seconds_path: str | None = None
    timestamp_path: str | None = None
    # parallel
    branches: tuple[Definition, ...] = ()
    # map
    items_path: str | None = "$"
    item_selector: Any = MISSING  # per item template (AWS ItemSelector; old Map "parameters" on items)
    iterator: Definition | None = None  # AWS Iterator / ItemProcessor
    max_concurrency: int = 0  # 0 = no limit (AWS), bounded by the engine's own cap
    # pass
    result: Any = MISSING
    # fail
    error: str | None = None
    cause: str | None = None
    error_path: str | None = None
    cause_path: str | None = None

    @property
    def is_terminal(self) -> bool:
        return self.type in TERMINAL_TYPES or (self.end and self.type != "choice")

    def transitions(self) -> list[str]:
        """Every state name this state can go to (next, choices, default, catchers)."""
        out: list[str] = []
        if self.next:
            out.append(self.next)
        for rule in self.choices:
            target = rule.get("next")
            if isinstance(target, str):
                out.append(target)
        if self.default:
            out.append(self.default)
        out.extend(c.next for c in self.catch)
        return out


@dataclass(frozen=True, slots=True)
class Definition:
    start_at: str
    states: Mapping[str, State] = field(default_factory=dict)
    timeout_sec: int | None = None
    comment: str = ""
    # (the editor keeps node positions under a top-level "layout": {state: [x, y]}; the runner ignores it)

    def state(self, name: str) -> State:
        return self.states[name]


# --- parsing --------------------------------------------------------------------------------------

_COMMON = {"type", "next", "end", "comment", "input_path", "output_path"}
_RESULTS = {"parameters", "result_selector", "result_path"}
_ERRORS = {"retry", "catch"}
_FIELDS: dict[str, set[str]] = {
    "task": _COMMON
    | _RESULTS
    | _ERRORS
    | {"function_id", "function", "environment", "version", "timeout_sec", "heartbeat_sec"},
    "choice": {"type", "comment", "input_path", "output_path", "choices", "default"},
    "wait": _COMMON | {"seconds", "timestamp", "seconds_path", "timestamp_path"},
    "parallel": _COMMON | _RESULTS | _ERRORS | {"branches", "timeout_sec"},
    "map": _COMMON
    | _RESULTS
    | _ERRORS
    | {"items_path", "item_selector", "iterator", "item_processor", "max_concurrency", "timeout_sec"},
    "pass": _COMMON | {"parameters", "result_path", "result"},
    "succeed": {"type", "comment", "input_path", "output_path"},
    "fail": {"type", "comment", "error", "cause", "error_path", "cause_path"},
}


def parse_definition(raw: Any, *, path: str = "") -> Definition:
    """The typed definition, or DefinitionError listing every structural problem found."""
    problems: list[Problem] = []
    definition = _parse(raw, path, problems)
    if problems or definition is None:
        raise DefinitionError(problems or [Problem(path or "$", "not a definition")])
    return definition


def parse_with_problems(raw: Any, *, path: str = "") -> tuple[Definition | None, list[Problem]]:
    """Like parse_definition, but returns what could be parsed together with the problems."""
    problems: list[Problem] = []
    return _parse(raw, path, problems), problems


def _join(base: str, key: str) -> str:
    return f"{base}.{key}" if base else key


def _parse(raw: Any, path: str, problems: list[Problem]) -> Definition | None:
    if not isinstance(raw, Mapping):
        problems.append(Problem(path or "$", "a definition must be a JSON object"))
        return None
    start_at = raw.get("start_at")
    if not isinstance(start_at, str) or not start_at:
        problems.append(Problem(_join(path, "start_at"), "required: the name of the first state"))
        start_at = ""
    states_raw = raw.get("states")
    states: dict[str, State] = {}
    if not isinstance(states_raw, Mapping) or not states_raw:
        problems.append(Problem(_join(path, "states"), "required: an object of at least one state"))
    else:
        for name, body in states_raw.items():
            state = _parse_state(str(name), body, _join(path, f"states.{name}"), problems)
            if state is not None:
                states[str(name)] = state
    timeout = raw.get("timeout_sec")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int) or not 1 <= timeout <= MAX_TIMEOUT_SEC
    ):
        problems.append(Problem(_join(path, "timeout_sec"), f"an integer from 1 to {MAX_TIMEOUT_SEC}"))
        timeout = None
    for key in raw:
        if key not in {"start_at", "states", "timeout_sec", "comment", "version", "layout"}:
            problems.append(Problem(_join(path, str(key)), "unknown field"))
    layout = raw.get("layout")
    if layout is not None and not (
        isinstance(layout, Mapping)
        and all(
            isinstance(v, list | tuple) and len(v) == 2 and all(isinstance(c, int | float) for c in v)
            for v in layout.values()
        )
    ):
        problems.append(Problem(_join(path, "layout"), "an object of state name -> [x, y]"))
    comment = raw.get("comment")
    return Definition(
        start_at=start_at,
        states=states,
        timeout_sec=timeout,
        comment=comment if isinstance(comment, str) else "",
    )


def _parse_state(name: str, body: Any, path: str, problems: list[Problem]) -> State | None:
    if not name or len(name) > 128:
        problems.append(Problem(path, "a state name is 1 to 128 characters"))
        return None
    if not isinstance(body, Mapping):
        problems.append(Problem(path, "a state must be a JSON object"))
        return None
    kind = body.get("type")
    kind = kind.lower() if isinstance(kind, str) else kind
    if kind not in STATE_TYPES:
        problems.append(Problem(_join(path, "type"), f"one of {', '.join(STATE_TYPES)}"))
        return None
    allowed = _FIELDS[kind]
    for key in body:
        if key not in allowed:
            problems.append(Problem(_join(path, str(key)), f"not a field of a {kind} state"))

    r = _Reader(body, path, problems)
    kw: dict[str, Any] = {
        "name": name,
        "type": kind,
        "comment": r.string("comment") or "",
        "input_path": r.path("input_path"),
        "output_path": r.path("output_path"),
    }
    if kind not in NO_NEXT_TYPES:
        kw["next"] = r.string("next")
        kw["end"] = r.boolean("end")
        if kw["next"] and kw["end"]:
            problems.append(Problem(_join(path, "end"), "a state has either next or end, not both"))
        elif not kw["next"] and not kw["end"]:
            problems.append(Problem(_join(path, "next"), "missing: give next (a state name) or end: true"))
    if kind in {"task", "parallel", "map", "pass"}:
        kw["parameters"] = r.any("parameters")
        kw["result_path"] = r.path("result_path")
    if kind in {"task", "parallel", "map"}:
        kw["result_selector"] = r.any("result_selector")
        kw["retry"] = _retry_rules(body.get("retry"), _join(path, "retry"), problems)
        kw["catch"] = _catch_rules(body.get("catch"), _join(path, "catch"), problems)
        kw["timeout_sec"] = r.number("timeout_sec", positive=True)

    if kind == "task":
        function = body.get("function_id", body.get("function"))
        if not isinstance(function, str) or not function:
            problems.append(Problem(_join(path, "function_id"), "required: a function id or name"))
            function = ""
        kw["function_id"] = function
        kw["environment"] = r.string("environment") or ""
        version = body.get("version")
        if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
            problems.append(Problem(_join(path, "version"), "a published version number (1 or more)"))
            version = None
        kw["function_version"] = version
    elif kind == "choice":
        choices = body.get("choices")
        if not isinstance(choices, list) or not choices:
            problems.append(Problem(_join(path, "choices"), "required: a list of at least one rule"))
            choices = []
        rules = []
        for i, rule in enumerate(choices):
            if not isinstance(rule, Mapping):
                problems.append(Problem(_join(path, f"choices[{i}]"), "a rule must be a JSON object"))
            elif not isinstance(rule.get("next"), str) or not rule.get("next"):
                problems.append(Problem(_join(path, f"choices[{i}].next"), "required: a state name"))
                rules.append(rule)
            else:
                rules.append(rule)
        kw["choices"] = tuple(rules)
        kw["default"] = r.string("default")
    elif kind == "wait":
        given = [k for k in ("seconds", "timestamp", "seconds_path", "timestamp_path") if k in body]
        if len(given) != 1:
            problems.append(
                Problem(path, "needs exactly one of seconds, timestamp, seconds_path, timestamp_path")
            )
        kw["seconds"] = r.number("seconds", positive=False)
        kw["timestamp"] = r.string("timestamp")
        kw["seconds_path"] = r.path("seconds_path", default=None)
        kw["timestamp_path"] = r.path("timestamp_path", default=None)
    elif kind == "parallel":
        branches = body.get("branches")
        if not isinstance(branches, list) or not branches:
            problems.append(Problem(_join(path, "branches"), "required: a list of at least one branch"))
            branches = []
        parsed = [_parse(b, _join(path, f"branches[{i}]"), problems) for i, b in enumerate(branches)]
        kw["branches"] = tuple(b for b in parsed if b is not None)
    elif kind == "map":
        kw["items_path"] = r.path("items_path")
        kw["item_selector"] = r.any("item_selector")
        iterator_raw = body.get("iterator", body.get("item_processor"))
        if iterator_raw is None:
            problems.append(Problem(_join(path, "iterator"), "required: the definition run for each item"))
        else:
            kw["iterator"] = _parse(iterator_raw, _join(path, "iterator"), problems)
        concurrency = body.get("max_concurrency", 0)
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 0:
            problems.append(Problem(_join(path, "max_concurrency"), "an integer, 0 (no limit) or more"))
            concurrency = 0
        kw["max_concurrency"] = concurrency
    elif kind == "pass":
        kw["result"] = r.any("result")
    elif kind == "fail":
        kw["error"] = r.string("error")
        kw["cause"] = r.string("cause")
        kw["error_path"] = r.path("error_path", default=None)
        kw["cause_path"] = r.path("cause_path", default=None)
    return State(**kw)


class _Reader:
    def __init__(self, body: Mapping[str, Any], path: str, problems: list[Problem]) -> None:
        self.body, self.base, self.problems = body, path, problems

    def _bad(self, key: str, message: str) -> None:
        self.problems.append(Problem(_join(self.base, key), message))

    def any(self, key: str) -> Any:
        return self.body.get(key, MISSING)

    def string(self, key: str) -> str | None:
        value = self.body.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self._bad(key, "must be a string")
            return None
        return value

    def boolean(self, key: str) -> bool:
        value = self.body.get(key, False)
        if not isinstance(value, bool):
            self._bad(key, "must be true or false")
            return False
        return value

    def number(self, key: str, *, positive: bool) -> float | None:
        value = self.body.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self._bad(key, "must be a number")
            return None
        if value < 0 or (positive and value == 0):
            self._bad(key, "must be more than 0" if positive else "must be 0 or more")
            return None
        return float(value)

    def path(self, key: str, *, default: str | None = "$") -> str | None:
        """A JSONPath field: absent -> default, JSON null -> None, else the string (syntax: validate.py)."""
        if key not in self.body:
            return default
        value = self.body[key]
        if value is None:
            return None
        if not isinstance(value, str) or not value.startswith("$"):
            self._bad(key, "must be a JSONPath starting with $ (or null)")
            return default
        return value


def _listify(raw: Any) -> list[Any]:
    if raw is None:
        return []
    return list(raw) if isinstance(raw, list) else [raw]  # the original stored a single retry object


def _errors(raw: Any, path: str, problems: list[Problem]) -> tuple[str, ...]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw or not all(isinstance(e, str) and e for e in raw):
        problems.append(Problem(path, "required: a non-empty list of error names (e.g. States.ALL)"))
        return ()
    return tuple(raw)


def _retry_rules(raw: Any, path: str, problems: list[Problem]) -> tuple[RetryRule, ...]:
    rules: list[RetryRule] = []
    for i, item in enumerate(_listify(raw)):
        p = f"{path}[{i}]"
        if not isinstance(item, Mapping):
            problems.append(Problem(p, "a retry rule must be a JSON object"))
            continue
        r = _Reader(item, p, problems)
        errors = _errors(item.get("error_equals", [ALL]), f"{p}.error_equals", problems)
        attempts = item.get("max_attempts", 3)
        if isinstance(attempts, bool) or not isinstance(attempts, int) or not 0 <= attempts <= 99:
            problems.append(Problem(f"{p}.max_attempts", "an integer from 0 to 99"))
            attempts = 3
        interval = r.number("interval_seconds", positive=True)
        rate = r.number("backoff_rate", positive=True)
        if rate is not None and rate < 1:
            problems.append(Problem(f"{p}.backoff_rate", "must be 1.0 or more"))
            rate = None
        max_delay = item.get("max_delay_seconds", item.get("max_interval_seconds"))
        if max_delay is not None and (
            isinstance(max_delay, bool) or not isinstance(max_delay, int | float) or max_delay <= 0
        ):
            problems.append(Problem(f"{p}.max_delay_seconds", "must be a number more than 0"))
            max_delay = None
        jitter = item.get("jitter_strategy", "NONE")
        if jitter not in ("NONE", "FULL"):
            problems.append(Problem(f"{p}.jitter_strategy", "NONE or FULL"))
        for key in item:
            if key not in {
                "error_equals",
                "max_attempts",
                "interval_seconds",
                "backoff_rate",
                "max_delay_seconds",
                "max_interval_seconds",
                "jitter_strategy",
                "comment",
            }:
                problems.append(Problem(f"{p}.{key}", "not a field of a retry rule"))
        rules.append(
            RetryRule(
                error_equals=errors,
                max_attempts=attempts,
                interval_seconds=interval if interval is not None else 1.0,
                backoff_rate=rate if rate is not None else 2.0,
                max_delay_seconds=float(max_delay) if max_delay is not None else None,
                jitter=jitter == "FULL",
            )
        )
    return tuple(rules)


def _catch_rules(raw: Any, path: str, problems: list[Problem]) -> tuple[CatchRule, ...]:
    rules: list[CatchRule] = []
    for i, item in enumerate(_listify(raw)):
        p = f"{path}[{i}]"
        if not isinstance(item, Mapping):
            problems.append(Problem(p, "a catch rule must be a JSON object"))
            continue
        r = _Reader(item, p, problems)
        errors = _errors(item.get("error_equals"), f"{p}.error_equals", problems)
        target = r.string("next")
        if not target:
            problems.append(Problem(f"{p}.next", "required: the state to go to"))
            continue
        for key in item:
            if key not in {"error_equals", "next", "result_path", "comment"}:
                problems.append(Problem(f"{p}.{key}", "not a field of a catch rule"))
        rules.append(CatchRule(error_equals=errors, next=target, result_path=r.path("result_path")))
    return tuple(rules)
