"""Amazon States Language import/export: ASL -> Nimbus JSON -> ASL is the identity for the supported
subset, Resource maps to a Nimbus function by name, unsupported features are named with their path."""

from __future__ import annotations

import copy
from typing import Any

from engine.workflows.asl import from_asl, is_asl, to_asl
from engine.workflows.dataflow import state_input, state_output
from engine.workflows.model import parse_definition
from engine.workflows.validate import validate_definition

FUNCTIONS = {"validate-data": "fn_1", "process-order": "fn_2", "notify": "fn_3", "HelloFunction": "fn_4"}
NAMES = {v: k for k, v in FUNCTIONS.items()}
PREFIX = "arn:aws:lambda:us-east-1:123456789012:function:"

# one of every state type and every supported field, as AWS writes it
ASL: dict[str, Any] = {
    "Comment": "Order processing",
    "StartAt": "Validate",
    "TimeoutSeconds": 600,
    "Version": "1.0",
    "States": {
        "Validate": {
            "Type": "Task",
            "Comment": "check the order",
            "Resource": PREFIX + "validate-data",
            "InputPath": "$.order",
            "Parameters": {"body.$": "$", "execution.$": "$$.Execution.Id", "fixed": {"a": [1, 2]}},
            "ResultSelector": {"ok.$": "$.valid"},
            "ResultPath": "$.validation",
            "OutputPath": "$",
            "TimeoutSeconds": 30,
            "HeartbeatSeconds": 10,
            "Retry": [
                {
                    "ErrorEquals": ["States.Timeout"],
                    "IntervalSeconds": 2,
                    "MaxAttempts": 4,
                    "BackoffRate": 1.5,
                    "MaxDelaySeconds": 20,
                    "JitterStrategy": "FULL",
                    "Comment": "slow",
                },
                {"ErrorEquals": ["States.ALL"]},
            ],
            "Catch": [
                {"ErrorEquals": ["States.ALL"], "Next": "Failed", "ResultPath": "$.error", "Comment": "x"}
            ],
            "Next": "Route",
        },
        "Route": {
            "Type": "Choice",
            "InputPath": "$",
            "OutputPath": "$",
            "Choices": [
                {"Not": {"Variable": "$.type", "StringEquals": "Private"}, "Next": "Fan"},
                {
                    "And": [
                        {"Variable": "$.value", "IsPresent": True},
                        {"Variable": "$.value", "NumericGreaterThanEqualsPath": "$.min"},
                    ],
                    "Next": "Pause",
                },
                {
                    "Or": [
                        {"Variable": "$.name", "StringMatches": "vip-*"},
                        {"Variable": "$.at", "TimestampLessThan": "2024-01-01T00:00:00Z"},
                        {"Variable": "$.flag", "BooleanEquals": False},
                    ],
                    "Next": "Each",
                },
            ],
            "Default": "Failed",
        },
        "Pause": {"Type": "Wait", "SecondsPath": "$.delay", "Next": "Until"},
        "Until": {"Type": "Wait", "Timestamp": "2030-01-01T00:00:00Z", "Next": "Fan"},
        "Fan": {
            "Type": "Parallel",
            "Branches": [
                {
                    "StartAt": "Ship",
                    "States": {"Ship": {"Type": "Task", "Resource": PREFIX + "process-order:3", "End": True}},
                },
                {
                    "StartAt": "Tell",
                    "States": {
                        "Tell": {
                            "Type": "Pass",
                            "Result": {"sent": True},
                            "ResultPath": "$.told",
                            "End": True,
                        }
                    },
                },
            ],
            "ResultSelector": {"all.$": "$[*]"},
            "Next": "Each",
        },
        "Each": {
            "Type": "Map",
            "ItemsPath": "$.items",
            "ItemSelector": {"item.$": "$$.Map.Item.Value", "index.$": "$$.Map.Item.Index"},
            "MaxConcurrency": 2,
            "ItemProcessor": {
                "StartAt": "One",
                "States": {"One": {"Type": "Task", "Resource": PREFIX + "notify", "End": True}},
            },
            "ResultPath": "$.results",
            "Next": "Legacy",
        },
        "Legacy": {
            "Type": "Map",
            "Parameters": {"v.$": "$$.Map.Item.Value"},
            "Iterator": {"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": True}}},
            "Next": "Done",
        },
        "Done": {"Type": "Succeed"},
        "Failed": {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"},
    },
}


def resolve(name: str) -> str | None:
    return FUNCTIONS.get(name)


def test_asl_is_recognised() -> None:
    assert is_asl(ASL)
    assert not is_asl({"start_at": "A", "states": {}})
    assert not is_asl([1])


def test_asl_converts_to_a_valid_nimbus_definition() -> None:
    nimbus, problems = from_asl(ASL, resolve)
    assert problems == []
    assert nimbus["start_at"] == "Validate" and nimbus["timeout_sec"] == 600
    task = nimbus["states"]["Validate"]
    assert task["type"] == "task" and task["function_id"] == "fn_1"
    assert task["retry"][0] == {
        "error_equals": ["States.Timeout"],
        "interval_seconds": 2,
        "max_attempts": 4,
        "backoff_rate": 1.5,
        "max_delay_seconds": 20,
        "jitter_strategy": "FULL",
        "comment": "slow",
    }
    assert task["catch"] == [
        {"error_equals": ["States.ALL"], "next": "Failed", "result_path": "$.error", "comment": "x"}
    ]
    assert task["parameters"] == ASL["States"]["Validate"]["Parameters"]  # templates are copied unchanged
    rules = nimbus["states"]["Route"]["choices"]
    assert rules[0] == {"not": {"variable": "$.type", "string_equals": "Private"}, "next": "Fan"}
    assert rules[1]["and"][1] == {"variable": "$.value", "numeric_greater_than_equals_path": "$.min"}
    assert rules[2]["or"][0] == {"variable": "$.name", "string_matches": "vip-*"}
    ship = nimbus["states"]["Fan"]["branches"][0]["states"]["Ship"]
    assert ship["function_id"] == "fn_2" and ship["version"] == 3
    assert nimbus["states"]["Each"]["item_processor"]["states"]["One"]["function_id"] == "fn_3"
    assert nimbus["states"]["Pause"] == {"type": "wait", "seconds_path": "$.delay", "next": "Until"}

    definition, problems = validate_definition(nimbus, function_exists=lambda f: f in NAMES)
    assert problems == []
    assert definition is not None
    assert definition.states["Validate"].retry[0].jitter is True
    assert definition.states["Each"].max_concurrency == 2


def test_round_trip_is_the_identity() -> None:
    original = copy.deepcopy(ASL)
    nimbus, problems = from_asl(ASL, resolve)
    assert problems == []
    back = to_asl(nimbus, function_name=NAMES.__getitem__, arn_prefix=PREFIX)
    assert back == original
    assert original == ASL  # the input was not modified


def test_plain_names_round_trip_without_a_prefix() -> None:
    asl = {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "notify:2", "End": True}}}
    nimbus, problems = from_asl(asl, resolve)
    assert problems == [] and nimbus["states"]["T"] == {
        "type": "task",
        "function_id": "fn_3",
        "version": 2,
        "end": True,
    }
    assert to_asl(nimbus, function_name=NAMES.__getitem__) == asl


def test_export_of_a_nimbus_definition() -> None:
    nimbus = {
        "start_at": "A",
        "layout": {"A": [0, 0]},
        "states": {
            "A": {
                "type": "Task",
                "function": "notify",
                "environment": "prod",
                "retry": {"error_equals": ["E"], "max_interval_seconds": 5},
                "next": "B",
            },
            "B": {
                "type": "choice",
                "choices": [{"variable": "$.n", "numeric_not_equals": 1, "next": "C"}],
                "default": "C",
            },
            "C": {"type": "succeed"},
        },
    }
    asl = to_asl(nimbus)
    assert "layout" not in asl
    assert asl["States"]["A"] == {
        "Type": "Task",
        "Resource": "notify",
        "Next": "B",
        "Retry": [{"ErrorEquals": ["E"], "MaxDelaySeconds": 5}],
    }
    # the original's *_not_equals is written the ASL way, with Not
    assert asl["States"]["B"]["Choices"] == [{"Not": {"Variable": "$.n", "NumericEquals": 1}, "Next": "C"}]
    back, problems = from_asl(asl, lambda name: name)
    assert problems == []
    assert validate_definition(back)[1] == []


def test_unknown_function_and_unsupported_features_are_named_with_their_path() -> None:
    asl = {
        "StartAt": "A",
        "QueryLanguage": "JSONata",
        "States": {
            "A": {"Type": "Task", "Resource": PREFIX + "ghost", "Next": "B"},
            "B": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken", "Next": "C"},
            "C": {
                "Type": "Map",
                "ItemReader": {"Resource": "arn:aws:states:::s3:getObject"},
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "X",
                    "States": {"X": {"Type": "Pass", "End": True}},
                },
                "ToleratedFailurePercentage": 5,
                "Next": "D",
            },
            "D": {
                "Type": "Choice",
                "Choices": [
                    {"Condition": "{% $x %}", "Next": "E"},
                    {"Variable": "$.a", "StringSoundsLike": "x", "Next": "E"},
                ],
            },
            "E": {"Type": "Pass", "Assign": {"x": 1}, "Frobnicate": True, "End": True},
            "F": {"Type": "Task", "Resource": PREFIX + "notify:live", "End": True},
        },
    }
    _, problems = from_asl(asl, resolve)
    found = {p.path: p.message for p in problems}
    expected = {
        "QueryLanguage": "JSONata",
        "States.A.Resource": "no function named 'ghost'",
        "States.B.Resource": "not supported",
        "States.C.ItemReader": "ItemReader",
        "States.C.ItemProcessor.ProcessorConfig": "INLINE",
        "States.C.ToleratedFailurePercentage": "tolerated failures",
        "States.D.Choices[0].Condition": "JSONata",
        "States.D.Choices[1].StringSoundsLike": "not a choice rule field",
        "States.E.Assign": "variables",
        "States.E.Frobnicate": "not a supported field",
        "States.F.Resource": "qualifier 'live'",
    }
    for path, message in expected.items():
        assert path in found, f"{path} missing from {found}"
        assert message in found[path], (path, found[path])


def test_imported_data_flow_gives_the_aws_output() -> None:
    # "InputPath, ResultPath and OutputPath Example" (input-output-example.html), imported from ASL
    asl = {
        "Comment": "A Hello World example of the Amazon States Language using an AWS Lambda function",
        "StartAt": "HelloWorld",
        "States": {
            "HelloWorld": {
                "Type": "Task",
                "Resource": PREFIX + "HelloFunction",
                "InputPath": "$.lambda",
                "ResultPath": "$.data.lambdaresult",
                "OutputPath": "$.data",
                "End": True,
            }
        },
    }
    nimbus, problems = from_asl(asl, resolve)
    assert problems == []
    state = parse_definition(nimbus).states["HelloWorld"]
    assert state.function_id == "fn_4"
    raw = {
        "comment": "An input comment.",
        "data": {"val1": 23, "val2": 17},
        "extra": "foo",
        "lambda": {"who": "AWS Step Functions"},
    }
    task_input = state_input(state, raw)
    assert task_input == {"who": "AWS Step Functions"}
    output = state_output(state, raw, f"Hello, {task_input['who']}!")
    assert output == {"val1": 23, "val2": 17, "lambdaresult": "Hello, AWS Step Functions!"}
