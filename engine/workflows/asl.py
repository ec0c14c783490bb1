"""Amazon States Language (PascalCase) <-> the Nimbus definition format (snake_case), both ways.

`from_asl` converts what Nimbus can run and names every unsupported feature with its path (JSONata,
Distributed Map's ItemReader/ResultWriter/ItemBatcher, `.sync`/`.waitForTaskToken` integrations, ...).
A Task's `Resource` is a Lambda-style ARN `arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]` or a
plain function name `NAME[:QUALIFIER]`; NAME is looked up through `resolve_function` (name -> function id)
and a numeric QUALIFIER becomes the pinned `version`. Payload templates (Parameters, ResultSelector,
ItemSelector, Result) and paths are copied unchanged: they mean the same in both formats.
`to_asl` goes back; ASL -> Nimbus -> ASL is the identity for the supported subset when `to_asl` is given
the same function naming (and `arn_prefix` for ARN resources).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from engine.workflows.choice import COMBINATORS, COMPARATORS
from engine.workflows.model import Problem

# field maps: ASL key -> Nimbus key (the order is the export order)
_TOP = {"Comment": "comment", "StartAt": "start_at", "States": "states", "TimeoutSeconds": "timeout_sec",
        "Version": "version"}  # fmt: skip
_STATE = {
    "Type": "type",
    "Comment": "comment",
    "Resource": "function_id",
    "InputPath": "input_path",
    "Parameters": "parameters",
    "ItemsPath": "items_path",
    "ItemSelector": "item_selector",
    "MaxConcurrency": "max_concurrency",
    "Iterator": "iterator",
    "ItemProcessor": "item_processor",
    "Branches": "branches",
    "Choices": "choices",
    "Default": "default",
    "Seconds": "seconds",
    "Timestamp": "timestamp",
    "SecondsPath": "seconds_path",
    "TimestampPath": "timestamp_path",
    "Result": "result",
    "ResultSelector": "result_selector",
    "ResultPath": "result_path",
    "OutputPath": "output_path",
    "TimeoutSeconds": "timeout_sec",
    "HeartbeatSeconds": "heartbeat_sec",
    "Retry": "retry",
    "Catch": "catch",
    "Error": "error",
    "Cause": "cause",
    "ErrorPath": "error_path",
    "CausePath": "cause_path",
    "Next": "next",
    "End": "end",
}
_RETRY = {"ErrorEquals": "error_equals", "IntervalSeconds": "interval_seconds", "MaxAttempts": "max_attempts",
          "BackoffRate": "backoff_rate", "MaxDelaySeconds": "max_delay_seconds",
          "JitterStrategy": "jitter_strategy", "Comment": "comment"}  # fmt: skip
_CATCH = {"ErrorEquals": "error_equals", "ResultPath": "result_path", "Next": "next", "Comment": "comment"}
_TYPES = {"Task": "task", "Choice": "choice", "Wait": "wait", "Parallel": "parallel", "Map": "map",
          "Pass": "pass", "Succeed": "succeed", "Fail": "fail"}  # fmt: skip
_UNSUPPORTED = {
    "QueryLanguage": "JSONata is not supported (JSONPath only)",
    "Arguments": "JSONata Arguments are not supported; use Parameters",
    "Output": "JSONata Output is not supported; use OutputPath/ResultSelector",
    "Assign": "workflow variables (Assign) are not supported",
    "Credentials": "cross-account Credentials are not supported",
    "TimeoutSecondsPath": "TimeoutSecondsPath is not supported; use TimeoutSeconds",
    "HeartbeatSecondsPath": "HeartbeatSecondsPath is not supported",
    "ItemReader": "Distributed Map's ItemReader is not supported (inline Map only)",
    "ItemBatcher": "Distributed Map's ItemBatcher is not supported (inline Map only)",
    "ResultWriter": "Distributed Map's ResultWriter is not supported (inline Map only)",
    "ToleratedFailurePercentage": "Distributed Map's tolerated failures are not supported",
    "ToleratedFailurePercentagePath": "Distributed Map's tolerated failures are not supported",
    "ToleratedFailureCount": "Distributed Map's tolerated failures are not supported",
    "ToleratedFailureCountPath": "Distributed Map's tolerated failures are not supported",
    "MaxConcurrencyPath": "MaxConcurrencyPath is not supported; use MaxConcurrency",
    "Label": "Distributed Map's Label is not supported",
}
_ARN = re.compile(r"^arn:[^:]+:lambda:[^:]*:[^:]*:function:(?P<name>[^:]+)(?::(?P<qualifier>[^:]+))?$")

ResolveFunction = Callable[[str], str | None]


def is_asl(raw: Any) -> bool:
    """Whether a definition is written in ASL (PascalCase StartAt/States) rather than Nimbus JSON."""
    return isinstance(raw, Mapping) and ("StartAt" in raw or "States" in raw)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _join(base: str, key: str) -> str:
    return f"{base}.{key}" if base else key


# --- ASL -> Nimbus ------------------------------------------------------------------------------------


def from_asl(raw: Any, resolve_function: ResolveFunction) -> tuple[dict[str, Any], list[Problem]]:
    """The Nimbus form of an ASL definition and the problems met (paths use the ASL keys)."""
    problems: list[Problem] = []
    out = _definition(raw, "", resolve_function, problems)
    return out, problems


def _definition(raw: Any, path: str, resolve: ResolveFunction, problems: list[Problem]) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        problems.append(Problem(path or "$", "a definition must be a JSON object"))
        return {}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        key_path = _join(path, key)
        if key == "QueryLanguage" and value == "JSONPath":
            continue
        if key == "ProcessorConfig":
            _processor_config(value, key_path, problems)
            continue
        if key in _UNSUPPORTED:
            problems.append(Problem(key_path, _UNSUPPORTED[key]))
        elif key not in _TOP:
            problems.append(Problem(key_path, "not a field of an ASL state machine"))
        elif key == "States":
            if isinstance(value, Mapping):
                out["states"] = {
                    name: _state(body, _join(key_path, name), resolve, problems)
                    for name, body in value.items()
                }
            else:
                problems.append(Problem(key_path, "must be an object of states"))
                out["states"] = value
        else:
            out[_TOP[key]] = value
    return out


def _processor_config(value: Any, path: str, problems: list[Problem]) -> None:
    if not isinstance(value, Mapping) or value.get("Mode", "INLINE") != "INLINE":
        problems.append(Problem(path, "only the INLINE Map mode is supported (no DISTRIBUTED)"))


def _state(body: Any, path: str, resolve: ResolveFunction, problems: list[Problem]) -> Any:
    if not isinstance(body, Mapping):
        problems.append(Problem(path, "a state must be a JSON object"))
        return body
    out: dict[str, Any] = {}
    for key, value in body.items():
        key_path = _join(path, key)
        if key == "QueryLanguage" and value == "JSONPath":
            continue
        if key in _UNSUPPORTED:
            problems.append(Problem(key_path, _UNSUPPORTED[key]))
            continue
        target = _STATE.get(key)
        if target is None:
            problems.append(Problem(key_path, "not a supported field of an ASL state"))
            continue
        if key == "Type":
            kind = _TYPES.get(value) if isinstance(value, str) else None
            if kind is None:
                problems.append(Problem(key_path, f"one of {', '.join(_TYPES)}"))
            out["type"] = kind or value
        elif key == "Resource":
            _resource(value, key_path, out, resolve, problems)
        elif key == "Retry":
            out["retry"] = _rules(value, _RETRY, key_path, problems)
        elif key == "Catch":
            out["catch"] = _rules(value, _CATCH, key_path, problems)
        elif key == "Choices":
            out["choices"] = (
                [_choice(rule, f"{key_path}[{i}]", problems, top=True) for i, rule in enumerate(value)]
                if isinstance(value, list)
                else value
            )
        elif key == "Branches":
            out["branches"] = (
                [_definition(b, f"{key_path}[{i}]", resolve, problems) for i, b in enumerate(value)]
                if isinstance(value, list)
                else value
            )
        elif key in ("Iterator", "ItemProcessor"):
            out[target] = _definition(value, key_path, resolve, problems)
        else:
            out[target] = value
    return out


def _resource(
    value: Any, path: str, out: dict[str, Any], resolve: ResolveFunction, problems: list[Problem]
) -> None:
    if not isinstance(value, str) or not value:
        problems.append(Problem(path, "a function ARN or name"))
        out["function_id"] = value
        return
    if value.endswith((".sync", ".waitForTaskToken")) or value.startswith("arn:aws:states:::"):
        problems.append(
            Problem(
                path,
                f"{value!r}: service integrations and callback patterns are not supported; "
                "use a function ARN (arn:aws:lambda:...:function:NAME) or a function name",
            )
        )
        out["function_id"] = value
        return
    match = _ARN.match(value)
    if match:
        name, qualifier = match.group("name"), match.group("qualifier")
    elif value.startswith("arn:"):
        problems.append(Problem(path, f"{value!r} is not a function ARN (arn:aws:lambda:...:function:NAME)"))
        out["function_id"] = value
        return
    else:
        name, _, qualifier = value.partition(":")
    function_id = resolve(name)
    if function_id is None:
        problems.append(Problem(path, f"no function named {name!r}"))
        function_id = name
    out["function_id"] = function_id
    if qualifier and qualifier != "$LATEST":
        if qualifier.isdigit() and int(qualifier) >= 1:
            out["version"] = int(qualifier)
        else:
            problems.append(Problem(path, f"qualifier {qualifier!r}: only a version number or $LATEST"))


def _rules(value: Any, fields: Mapping[str, str], path: str, problems: list[Problem]) -> Any:
    if not isinstance(value, list):
        problems.append(Problem(path, "must be a list"))
        return value
    out: list[Any] = []
    for i, rule in enumerate(value):
        if not isinstance(rule, Mapping):
            out.append(rule)
            continue
        converted: dict[str, Any] = {}
        for key, item in rule.items():
            if key in fields:
                converted[fields[key]] = item
            else:
                problems.append(Problem(f"{path}[{i}].{key}", "not a supported field"))
        out.append(converted)
    return out


def _choice(rule: Any, path: str, problems: list[Problem], *, top: bool) -> Any:
    if not isinstance(rule, Mapping):
        return rule
    out: dict[str, Any] = {}
    for key, value in rule.items():
        key_path = f"{path}.{key}"
        name = _snake(key)
        if key == "Condition":
            problems.append(
                Problem(key_path, "JSONata conditions are not supported; use Variable and a comparator")
            )
        elif key in ("And", "Or"):
            out[name] = (
                [_choice(r, f"{key_path}[{i}]", problems, top=False) for i, r in enumerate(value)]
                if isinstance(value, list)
                else value
            )
        elif key == "Not":
            out["not"] = _choice(value, key_path, problems, top=False)
        elif key in ("Variable", "Next", "Comment") or name in COMPARATORS:
            out[name] = value
        else:
            problems.append(Problem(key_path, "not a choice rule field or comparator"))
    return out


# --- Nimbus -> ASL ------------------------------------------------------------------------------------

_TOP_BACK = {v: k for k, v in _TOP.items()}
_STATE_BACK = {v: k for k, v in _STATE.items()} | {
    "function": "Resource",
    "version": None,
    "environment": None,
}
_RETRY_BACK = {v: k for k, v in _RETRY.items()} | {"max_interval_seconds": "MaxDelaySeconds"}
_CATCH_BACK = {v: k for k, v in _CATCH.items()}
_TYPES_BACK = {v: k for k, v in _TYPES.items()}


def to_asl(
    raw_nimbus: Mapping[str, Any],
    *,
    function_name: Callable[[str], str] | None = None,
    arn_prefix: str | None = None,
) -> dict[str, Any]:
    """The ASL form of a Nimbus definition. Resource = the function's name (`function_name(id)`, else the
    stored id/name), prefixed with `arn_prefix` (e.g. "arn:aws:lambda:us-east-1:123456789012:function:")
    when given, with ":N" for a pinned version. The editor's `layout` and a Task's `environment` have no
    ASL equivalent and are left out."""
    return _definition_back(raw_nimbus, function_name, arn_prefix)


def _definition_back(raw: Any, name: Callable[[str], str] | None, prefix: str | None) -> Any:
    if not isinstance(raw, Mapping):
        return raw
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "states" and isinstance(value, Mapping):
            out["States"] = {n: _state_back(body, name, prefix) for n, body in value.items()}
        elif key in _TOP_BACK:
            out[_TOP_BACK[key]] = value
    return out


def _state_back(body: Any, name: Callable[[str], str] | None, prefix: str | None) -> Any:
    if not isinstance(body, Mapping):
        return body
    out: dict[str, Any] = {}
    for key, value in body.items():
        target = _STATE_BACK.get(key)
        if target is None:
            continue
        if key == "type":
            out["Type"] = _TYPES_BACK.get(str(value).lower(), value)
        elif key in ("function_id", "function"):
            function = name(value) if name is not None and isinstance(value, str) else value
            resource = f"{prefix or ''}{function}"
            version = body.get("version")
            if isinstance(version, int) and not isinstance(version, bool):
                resource = f"{resource}:{version}"
            out["Resource"] = resource
        elif key == "retry":
            rules = value if isinstance(value, list) else [value]
            out["Retry"] = [_rule_back(r, _RETRY_BACK) for r in rules]
        elif key == "catch":
            rules = value if isinstance(value, list) else [value]
            out["Catch"] = [_rule_back(r, _CATCH_BACK) for r in rules]
        elif key == "choices" and isinstance(value, list):
            out["Choices"] = [_choice_back(r) for r in value]
        elif key == "branches" and isinstance(value, list):
            out["Branches"] = [_definition_back(b, name, prefix) for b in value]
        elif key in ("iterator", "item_processor"):
            out[target] = _definition_back(value, name, prefix)
        else:
            out[target] = value
    return out


def _rule_back(rule: Any, fields: Mapping[str, str]) -> Any:
    if not isinstance(rule, Mapping):
        return rule
    return {fields[k]: v for k, v in rule.items() if k in fields}


def _choice_back(rule: Any) -> Any:
    if not isinstance(rule, Mapping):
        return rule
    out: dict[str, Any] = {}
    negated: dict[str, Any] = {}
    for key, value in rule.items():
        if key in ("and", "or"):
            out[_pascal(key)] = [_choice_back(r) for r in value] if isinstance(value, list) else value
        elif key == "not":
            out["Not"] = _choice_back(value)
        elif key.endswith("_not_equals") and key in COMPARATORS:
            # the original's *_not_equals: ASL writes it as Not {*Equals}
            negated[_pascal(key.replace("_not_equals", "_equals"))] = value
        elif key in COMPARATORS or key in ("variable", "next", "comment") or key in COMBINATORS:
            out[_pascal(key)] = value
    if negated:
        inner = {"Variable": out.pop("Variable")} if "Variable" in out else {}
        out = {"Not": inner | negated, **out}
    return out
