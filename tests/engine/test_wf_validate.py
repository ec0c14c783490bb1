"""Validation lists every problem of a definition in one pass, each with its path."""

from __future__ import annotations

from typing import Any

import pytest

from engine.workflows.model import DefinitionError, Problem
from engine.workflows.validate import require_valid, validate_definition


def problems_of(raw: Any, **kw: Any) -> list[Problem]:
    definition, problems = validate_definition(raw, **kw)
    assert (definition is None) == bool(problems)
    return problems


def paths(problems: list[Problem]) -> dict[str, str]:
    return {p.path: p.message for p in problems}


GOOD: dict[str, Any] = {
    "start_at": "Validate",
    "timeout_sec": 300,
    "states": {
        "Validate": {
            "type": "task",
            "function_id": "validate-data",
            "parameters": {
                "body.$": "$.order",
                "meta": {"id.$": "$$.Execution.Id", "fmt.$": "States.Format('{}', $.x)"},
            },
            "result_path": "$.validation",
            "retry": [{"error_equals": ["Timeout"], "max_attempts": 2}, {"error_equals": ["States.ALL"]}],
            "catch": [{"error_equals": ["States.ALL"], "next": "Failed", "result_path": "$.error"}],
            "next": "Check",
        },
        "Check": {
            "type": "choice",
            "choices": [{"variable": "$.validation.ok", "boolean_equals": True, "next": "Fan"}],
            "default": "Failed",
        },
        "Fan": {
            "type": "parallel",
            "branches": [
                {"start_at": "A", "states": {"A": {"type": "pass", "end": True}}},
                {
                    "start_at": "B",
                    "states": {"B": {"type": "wait", "seconds": 1, "next": "B2"}, "B2": {"type": "succeed"}},
                },
            ],
            "next": "Each",
        },
        "Each": {
            "type": "map",
            "items_path": "$[0].items",
            "item_selector": {"item.$": "$$.Map.Item.Value"},
            "max_concurrency": 2,
            "iterator": {
                "start_at": "Work",
                "states": {"Work": {"type": "task", "function_id": "echo", "end": True}},
            },
            "next": "Loop",
        },
        "Loop": {
            "type": "choice",
            "choices": [{"variable": "$.again", "is_present": True, "next": "Each"}],
            "default": "Done",
        },
        "Done": {"type": "succeed"},
        "Failed": {"type": "fail", "error": "ValidationError", "cause": "bad order"},
    },
}  # fmt: skip


def test_a_good_definition_has_no_problems() -> None:
    definition, problems = validate_definition(GOOD, function_exists=lambda f: f in {"validate-data", "echo"})
    assert problems == []
    assert definition is not None and definition.start_at == "Validate"
    assert require_valid(GOOD).states["Each"].max_concurrency == 2


def test_every_problem_is_listed_with_its_path() -> None:
    bad = {
        "start_at": "Start",
        "states": {
            "Start": {
                "type": "task",
                "function_id": "missing-fn",
                "input_path": "$.a[",
                "parameters": {"deep": {"list": [{"x.$": "$..[bad"}]}, "f.$": "States.Nope()", "n.$": 5},
                "result_path": "$.items[*]",
                "retry": [{"error_equals": ["States.ALL", "Other"]}, {"error_equals": ["E"]}],
                "catch": [{"error_equals": ["States.ALL"], "next": "Nowhere", "result_path": "$..x"}],
                "next": "Check",
            },
            "Check": {
                "type": "choice",
                "choices": [
                    {"variable": "$.x", "numeric_equals": "1", "next": "Loop1"},
                    {"variable": "$.y", "next": "Loop1"},
                    {"variable": "$.y", "string_equals": "a", "is_null": True, "next": "Ghost"},
                ],
                "default": "Phantom",
            },
            "Loop1": {"type": "pass", "next": "Loop2"},
            "Loop2": {"type": "wait", "timestamp": "tomorrow", "next": "Loop1"},
            "Orphan": {"type": "succeed"},
            "NoWayOn": {"type": "pass"},
            "Par": {
                "type": "parallel",
                "branches": [{"start_at": "X", "states": {"X": {"type": "pass", "next": "Y"}}}],
                "end": True,
            },
            "M": {
                "type": "map",
                "items_path": "$.list[0:2]",
                "iterator": {
                    "start_at": "Nope",
                    "states": {"W": {"type": "task", "function_id": "missing-fn", "end": True}},
                },
                "end": True,
            },
        },
    }  # fmt: skip
    found = paths(problems_of(bad, function_exists=lambda f: False))
    expected = {
        "states.Start.function_id": "no function 'missing-fn'",
        "states.Start.input_path": "bad JSONPath",
        "states.Start.parameters.deep.list[0].x.$": "bad JSONPath",
        "states.Start.parameters.f.$": "unknown intrinsic function States.Nope",
        "states.Start.parameters.n.$": "takes a JSONPath or an intrinsic",
        "states.Start.result_path": "reference path",
        "states.Start.retry[0].error_equals": "States.ALL must",
        "states.Start.catch[0].next": "no state named 'Nowhere'",
        "states.Start.catch[0].result_path": "reference path",
        "states.Check.choices[0].numeric_equals": "must be a number",
        "states.Check.choices[1]": "no comparator",
        "states.Check.choices[2]": "one comparator per rule",
        "states.Check.choices[2].next": "no state named 'Ghost'",
        "states.Check.default": "no state named 'Phantom'",
        "states.Loop1": "cycle with no exit: Loop1 -> Loop2 -> Loop1",
        "states.Loop2.timestamp": "ISO 8601",
        "states.Orphan": "unreachable",
        "states.NoWayOn.next": "missing: give next",
        "states.Par.branches[0].states.X.next": "no state named 'Y'",
        "states.M.items_path": "reference path",
        "states.M.iterator.start_at": "no state named 'Nope'",
        "states.M.iterator.states.W.function_id": "no function 'missing-fn'",
    }
    for path, message in expected.items():
        assert path in found, f"{path} not reported; got {found}"
        assert message in found[path], (path, found[path])


def test_states_all_must_be_alone_and_last() -> None:
    def with_rules(retry: list[dict], catch: list[dict]) -> dict[str, str]:
        task = {"type": "task", "function_id": "f", "end": True, "retry": retry, "catch": catch}
        return paths(problems_of({"start_at": "T", "states": {"T": task, "H": {"type": "succeed"}}}))

    found = with_rules([{"error_equals": ["States.ALL"]}, {"error_equals": ["E"]}], [])
    assert "must be in the last retry rule" in found["states.T.retry[0].error_equals"]
    found = with_rules([], [{"error_equals": ["X", "States.ALL"], "next": "H"}])
    assert "alone" in found["states.T.catch[0].error_equals"]
    assert "states.T.retry[0].error_equals" not in with_rules(
        [{"error_equals": ["E"]}, {"error_equals": ["States.ALL"]}], []
    )


def test_a_cycle_with_a_way_out_is_fine() -> None:
    loop = {
        "start_at": "Poll",
        "states": {
            "Poll": {"type": "task", "function_id": "f", "next": "Ready?"},
            "Ready?": {
                "type": "choice",
                "choices": [{"variable": "$.done", "boolean_equals": True, "next": "End"}],
                "default": "Sleep",
            },
            "Sleep": {"type": "wait", "seconds": 5, "next": "Poll"},
            "End": {"type": "succeed"},
        },
    }  # fmt: skip
    assert problems_of(loop) == []


def test_a_catch_counts_as_a_way_out_of_a_loop() -> None:
    loop = {
        "start_at": "A",
        "states": {
            "A": {
                "type": "task",
                "function_id": "f",
                "next": "B",
                "catch": [{"error_equals": ["States.ALL"], "next": "Out"}],
            },
            "B": {"type": "pass", "next": "A"},
            "Out": {"type": "fail"},
        },
    }  # fmt: skip
    assert problems_of(loop) == []


def test_a_self_loop_without_exit_is_reported() -> None:
    found = paths(problems_of({"start_at": "A", "states": {"A": {"type": "pass", "next": "A"}}}))
    assert "cycle with no exit: A -> A" in found["states.A"]


def test_structure_problems_come_from_the_model_and_are_not_duplicated() -> None:
    problems = problems_of({"start_at": "A", "states": {"A": {"type": "teleport"}}, "extra": 1})
    found = paths(problems)
    assert "states.A.type" in found and "extra" in found
    assert len(problems) == len(set(problems))
    assert paths(problems_of([])) == {"$": "a definition must be a JSON object"}
    assert "start_at" in paths(problems_of({"states": {"A": {"type": "succeed"}}}))


def test_state_count_limit_counts_nested_states() -> None:
    raw = {
        "start_at": "P",
        "states": {
            "P": {"type": "parallel", "end": True, "branches": [
                {"start_at": "A", "states": {"A": {"type": "pass", "next": "B"}, "B": {"type": "succeed"}}}]},
        },
    }  # fmt: skip
    assert problems_of(raw, max_states=3) == []
    found = paths(problems_of(raw, max_states=2))
    assert "3 states" in found["states"] and "limit is 2" in found["states"]


def test_function_lookup_is_asked_once_per_name() -> None:
    asked: list[str] = []

    def exists(name: str) -> bool:
        asked.append(name)
        return name == "known"

    raw = {
        "start_at": "A",
        "states": {
            "A": {"type": "task", "function_id": "known", "next": "B"},
            "B": {"type": "task", "function": "known", "next": "C"},
            "C": {"type": "task", "function_id": "ghost", "end": True},
        },
    }
    found = paths(problems_of(raw, function_exists=exists))
    assert list(found) == ["states.C.function_id"]
    assert sorted(asked) == ["ghost", "known"]


def test_require_valid_raises_with_every_problem() -> None:
    with pytest.raises(DefinitionError) as info:
        require_valid({"start_at": "X", "states": {"A": {"type": "pass", "next": "B"}}})
    # (with no valid start state, reachability is not judged: every state would be "unreachable")
    assert {p.path for p in info.value.problems} == {"start_at", "states.A.next"}
    assert "states.A.next" in str(info.value)
