"""How data moves through one state, in AWS Step Functions' order (the original Nimbus got it wrong):

    raw input -> InputPath -> Parameters -> [the state runs] -> ResultSelector -> ResultPath (into the
    raw input) -> OutputPath -> output

`context` is AWS's context object, read by `$$` paths: {"Execution": {"Id", "Input", "Name",
"StartTime"}, "State": {"Name", "EnteredTime", "RetryCount"}, "StateMachine": {"Id", "Name"},
"Map": {"Item": {"Index", "Value"}}}. Errors are AWS's: a path in InputPath/OutputPath that matches
nothing is States.Runtime (terminal), in Parameters/ResultSelector States.ParameterPathFailure, in
ResultPath States.ResultPathMatchFailure; intrinsic failures are States.IntrinsicFailure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.workflows import intrinsics, jsonpath
from engine.workflows.errors import StateError
from engine.workflows.model import (
    FAIL,
    MISSING,
    PARAMETER_PATH_FAILURE,
    RUNTIME,
    CatchRule,
    State,
)

Context = Mapping[str, Any] | None
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}")


# --- templates (Parameters, ResultSelector, ItemSelector) ---------------------------------------------


def resolve_template(template: Any, data: Any, context: Context = None, *, field: str = "Parameters") -> Any:
    """A payload template with every `"key.$"` replaced by `"key"` and the value its path (or intrinsic)
    selects from `data`, at any depth (also inside arrays); other values are copied as they are."""
    if isinstance(template, Mapping):
        out: dict[str, Any] = {}
        for key, value in template.items():
            if isinstance(key, str) and key.endswith(".$"):
                out[key[:-2]] = _dynamic(key, value, data, context, field)
            else:
                out[key] = resolve_template(value, data, context, field=field)
        return out
    if isinstance(template, list):
        return [resolve_template(item, data, context, field=field) for item in template]
    return template


def _dynamic(key: str, expression: Any, data: Any, context: Context, field: str) -> Any:
    if not isinstance(expression, str):
        raise StateError(PARAMETER_PATH_FAILURE, f"{field}: the value of {key!r} must be a path string")
    if intrinsics.is_intrinsic(expression):
        return intrinsics.evaluate(expression, data, context)
    try:
        return jsonpath.read(expression, data, context)
    except StateError as exc:
        raise StateError(
            PARAMETER_PATH_FAILURE,
            f"{field}: the JSONPath {expression!r} given for the field {key!r} could not be found in the "
            f"input ({exc.cause})",
        ) from None


def _path(path: str | None, data: Any, context: Context, field: str) -> Any:
    """InputPath/OutputPath: null gives {}, a path that matches nothing is States.Runtime."""
    if path is None:
        return {}
    if path == "$":
        return data
    try:
        return jsonpath.read(path, data, context)
    except StateError as exc:
        raise StateError(
            RUNTIME, f"{field}: invalid path {path!r}: the path matched nothing ({exc.cause})"
        ) from None


# --- the steps ----------------------------------------------------------------------------------------


def effective_input(state: State, raw_input: Any, context: Context = None) -> Any:
    """InputPath only (what a Choice, Wait, Succeed or Map works on)."""
    return _path(state.input_path, raw_input, context, "InputPath")


def state_input(state: State, raw_input: Any, context: Context = None) -> Any:
    """The input the state works on: InputPath, then Parameters (Task, Parallel, Pass).

    For a Map this is InputPath only: its Parameters (AWS's legacy name for ItemSelector) apply per item,
    see `map_items` and `item_input`."""
    data = effective_input(state, raw_input, context)
    if state.type != "map" and state.parameters is not MISSING:
        data = resolve_template(state.parameters, data, context, field="Parameters")
    return data


def map_items(state: State, effective: Any, context: Context = None) -> list[Any]:
    """The array a Map iterates: ItemsPath applied to the effective input (after InputPath)."""
    path = state.items_path if state.items_path is not None else "$"
    items = _path(path, effective, context, "ItemsPath")
    if not isinstance(items, list):
        raise StateError(RUNTIME, f"ItemsPath {path!r} did not select an array")
    return items


def item_context(context: Context, item: Any, index: int) -> dict[str, Any]:
    """The context object for one Map iteration ($$.Map.Item.Index / .Value)."""
    out = dict(context or {})
    out["Map"] = {"Item": {"Index": index, "Value": item}}
    return out


def item_input(state: State, item: Any, index: int, raw_input: Any, context: Context = None) -> Any:
    """The input of one Map iteration: the item, or ItemSelector (or legacy Parameters) resolved against
    the Map's effective input with $$.Map.Item.Value / Index in the context object."""
    template = state.item_selector if state.item_selector is not MISSING else state.parameters
    if template is MISSING:
        return item
    effective = effective_input(state, raw_input, context)
    field = "ItemSelector" if state.item_selector is not MISSING else "Parameters"
    return resolve_template(template, effective, item_context(context, item, index), field=field)


def state_output(state: State, raw_input: Any, result: Any, context: Context = None) -> Any:
    """The state's output from its raw input and its result: ResultSelector, ResultPath (into the raw
    input), OutputPath. For Choice, Wait and Succeed (no result of their own) pass the effective input
    as `result`: their ResultPath is "$", so only OutputPath applies."""
    if state.result_selector is not MISSING and state.type in ("task", "parallel", "map"):
        result = resolve_template(state.result_selector, result, context, field="ResultSelector")
    if state.result_path is None:
        combined = raw_input
    elif state.result_path == "$":
        combined = result
    else:
        combined = jsonpath.write(state.result_path, raw_input, result)
    return _path(state.output_path, combined, context, "OutputPath")


def catch_output(catcher: CatchRule, raw_input: Any, error: StateError) -> Any:
    """The input of the catcher's `next` state: the error output {"Error", "Cause"} placed into the
    state's raw input at the catcher's ResultPath ("$" = the error output alone, null = the raw input
    unchanged). As in AWS, the state's own ResultSelector, ResultPath and OutputPath are not applied on
    this path (a catcher has only its ResultPath)."""
    output = error.to_output()
    if catcher.result_path is None:
        return raw_input
    if catcher.result_path == "$":
        return output
    return jsonpath.write(catcher.result_path, raw_input, output)


def fail_fields(state: State, raw_input: Any) -> tuple[str, str]:
    """A Fail state's (error, cause): Error/Cause, or ErrorPath/CausePath read from its input (a path or
    an intrinsic; the value must be a string). Default error States.Fail, default cause ""."""
    error = state.error
    cause = state.cause
    if state.error_path is not None:
        error = _fail_string(state.error_path, raw_input, "ErrorPath")
    if state.cause_path is not None:
        cause = _fail_string(state.cause_path, raw_input, "CausePath")
    return error or FAIL, cause or ""


def _fail_string(expression: str, data: Any, field: str) -> str:
    if intrinsics.is_intrinsic(expression):
        value = intrinsics.evaluate(expression, data)
    else:
        try:
            value = jsonpath.read(expression, data)
        except StateError as exc:
            raise StateError(RUNTIME, f"{field} {expression!r} matched nothing ({exc.cause})") from None
    if not isinstance(value, str):
        raise StateError(RUNTIME, f"{field} {expression!r} must select a string")
    return value


def pass_result(state: State, effective_input: Any) -> Any:
    """A Pass state's result: its `result` when given, else its input (after InputPath and Parameters)."""
    return effective_input if state.result is MISSING else state.result


def parse_timestamp(value: Any) -> datetime:
    """An ISO 8601 / RFC 3339 timestamp with a time zone (e.g. 2016-03-14T01:59:00Z), as AWS requires."""
    if not isinstance(value, str):
        raise ValueError("a timestamp must be a string")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    if not _TIMESTAMP.match(text):
        raise ValueError(f"{value!r} is not an ISO 8601 timestamp (YYYY-MM-DDThh:mm:ssZ)")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 timestamp (YYYY-MM-DDThh:mm:ssZ)") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone (end it with Z or +hh:mm)")
    return parsed


def wait_until(state: State, effective_input: Any, now: datetime) -> datetime:
    """When a Wait state ends: now + Seconds, the Timestamp, or SecondsPath/TimestampPath read from the
    state's effective input (a bad value is States.Runtime). Returned in `now`'s kind (aware or UTC naive)."""
    if state.seconds is not None:
        until = _aware(now) + timedelta(seconds=state.seconds)
    elif state.timestamp is not None:
        until = _timestamp(state.timestamp, "Timestamp")
    elif state.seconds_path is not None:
        seconds = _path(state.seconds_path, effective_input, None, "SecondsPath")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise StateError(RUNTIME, f"SecondsPath {state.seconds_path!r} must select a number 0 or more")
        until = _aware(now) + timedelta(seconds=seconds)
    elif state.timestamp_path is not None:
        value = _path(state.timestamp_path, effective_input, None, "TimestampPath")
        until = _timestamp(value, "TimestampPath")
    else:
        until = _aware(now)
    if now.tzinfo is None:
        return until.astimezone(UTC).replace(tzinfo=None)
    return until.astimezone(now.tzinfo)


def _aware(now: datetime) -> datetime:
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now


def _timestamp(value: Any, field: str) -> datetime:
    try:
        return parse_timestamp(value)
    except ValueError as exc:
        raise StateError(RUNTIME, f"{field}: {exc}") from None
