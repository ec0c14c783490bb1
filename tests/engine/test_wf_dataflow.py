"""The data flow of a state, in AWS's order (InputPath -> Parameters -> ResultSelector -> ResultPath ->
OutputPath), checked against the worked examples of AWS Step Functions' developer guide: each test names
the page its input, fields and documented output come from. Also the intrinsic functions."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from engine.workflows import intrinsics
from engine.workflows.dataflow import (
    catch_output,
    effective_input,
    fail_fields,
    item_input,
    map_items,
    pass_result,
    state_input,
    state_output,
    wait_until,
)
from engine.workflows.errors import StateError
from engine.workflows.model import (
    FAIL,
    INTRINSIC_FAILURE,
    PARAMETER_PATH_FAILURE,
    RESULT_PATH_MATCH_FAILURE,
    RUNTIME,
    CatchRule,
    State,
    parse_definition,
)

PASS_ITERATOR = {"start_at": "P", "states": {"P": {"type": "pass", "end": True}}}


def make_state(**body: Any) -> State:
    body.setdefault("type", "task")
    if body["type"] == "task":
        body.setdefault("function_id", "fn")
    if body["type"] == "map":
        body.setdefault("iterator", PASS_ITERATOR)
    if body["type"] not in ("choice", "succeed", "fail"):
        body.setdefault("end", True)
    return parse_definition({"start_at": "S", "states": {"S": body}}).states["S"]


def run_task(state: State, raw: Any, result_of: Any, context: dict | None = None) -> tuple[Any, Any]:
    """(the input the function receives, the state's output) for a task whose function returns
    `result_of(input)` (or `result_of` itself when it is not callable)."""
    task_input = state_input(state, raw, context)
    result = result_of(task_input) if callable(result_of) else result_of
    return task_input, state_output(state, raw, result, context)


# --- "InputPath, ResultPath and OutputPath Example" (input-output-example.html) -----------------------


def test_aws_example_inputpath_resultpath_outputpath() -> None:
    # docs.aws.amazon.com/step-functions/latest/dg/input-output-example.html
    state = make_state(input_path="$.lambda", result_path="$.data.lambdaresult", output_path="$.data")
    raw = {"comment": "An input comment.", "data": {"val1": 23, "val2": 17}, "extra": "foo",
           "lambda": {"who": "AWS Step Functions"}}  # fmt: skip
    task_input, output = run_task(state, raw, lambda event: f"Hello, {event['who']}!")
    assert task_input == {"who": "AWS Step Functions"}  # "The Lambda function receives only ..."
    # the documented output: ResultPath writes into the *raw* input, then OutputPath selects $.data
    assert output == {"val1": 23, "val2": 17, "lambdaresult": "Hello, AWS Step Functions!"}


# --- "InputPath, Parameters and ResultSelector" (input-output-inputpath-params.html) -------------------


def test_aws_example_inputpath_selects_a_portion() -> None:
    # input-output-inputpath-params.html, "InputPath"
    raw = {"comment": "Example for InputPath.", "dataset1": {"val1": 1, "val2": 2, "val3": 3},
           "dataset2": {"val1": "a", "val2": "b", "val3": "c"}}  # fmt: skip
    assert state_input(make_state(input_path="$.dataset2"), raw) == {"val1": "a", "val2": "b", "val3": "c"}
    # "A path can yield a selection of values": $.a[0:2] on {"a": [1, 2, 3, 4]} -> [1, 2]
    assert state_input(make_state(input_path="$.a[0:2]"), {"a": [1, 2, 3, 4]}) == [1, 2]


def test_aws_example_parameters() -> None:
    # input-output-inputpath-params.html, "Parameters"
    raw = {"comment": "Example for Parameters.",
           "product": {"details": {"color": "blue", "size": "small", "material": "cotton"},
                       "availability": "in stock", "sku": "2317", "cost": "$23"}}  # fmt: skip
    state = make_state(
        parameters={
            "comment": "Selecting what I care about.",
            "MyDetails": {
                "size.$": "$.product.details.size",
                "exists.$": "$.product.availability",
                "StaticValue": "foo",
            },
        }
    )
    assert state_input(state, raw) == {
        "comment": "Selecting what I care about.",
        "MyDetails": {"size": "small", "exists": "in stock", "StaticValue": "foo"},
    }


def test_aws_example_result_selector_then_result_path() -> None:
    # input-output-inputpath-params.html, "ResultSelector" (an EMR createCluster.sync result)
    result = {
        "resourceType": "elasticmapreduce",
        "resource": "createCluster.sync",
        "output": {
            "SdkHttpMetadata": {"HttpHeaders": {"Content-Length": "1112"}, "HttpStatusCode": 200},
            "SdkResponseMetadata": {"RequestId": "1234-5678-9012"},
            "ClusterId": "AKIAIOSFODNN7EXAMPLE",
        },
    }
    state = make_state(
        result_selector={"ClusterId.$": "$.output.ClusterId", "ResourceType.$": "$.resourceType"},
        result_path="$.EMROutput",
    )
    output = state_output(state, {"OtherDataFromInput": {}}, result)
    assert output == {
        "OtherDataFromInput": {},
        "EMROutput": {"ResourceType": "elasticmapreduce", "ClusterId": "AKIAIOSFODNN7EXAMPLE"},
    }


def test_aws_example_result_selector_flattens_an_array_of_arrays() -> None:
    # input-output-inputpath-params.html, "Flattening an array of arrays" (Parallel or Map result)
    state = make_state(
        type="parallel", branches=[PASS_ITERATOR], result_selector={"flattenArray.$": "$[*][*]"}
    )
    assert state_output(state, {}, [[1, 2, 3], [4, 5, 6]]) == {"flattenArray": [1, 2, 3, 4, 5, 6]}


# --- "Specifying state output using ResultPath" (input-output-resultpath.html) -------------------------

RESULTPATH_INPUT = {"comment": "This is a test", "details": "Default example", "who": "Step Functions"}
HELLO = "Hello, Step Functions!"


def test_aws_example_resultpath_dollar_replaces_the_input() -> None:
    assert state_output(make_state(), RESULTPATH_INPUT, HELLO) == HELLO  # ResultPath absent = "$"
    assert state_output(make_state(result_path="$"), RESULTPATH_INPUT, HELLO) == HELLO


def test_aws_example_resultpath_null_discards_the_result() -> None:
    assert state_output(make_state(result_path=None), RESULTPATH_INPUT, HELLO) == RESULTPATH_INPUT


def test_aws_example_resultpath_includes_the_result_with_the_input() -> None:
    assert state_output(make_state(result_path="$.taskresult"), RESULTPATH_INPUT, HELLO) == {
        **RESULTPATH_INPUT,
        "taskresult": HELLO,
    }


def test_aws_example_resultpath_updates_a_node_in_the_input() -> None:
    raw = {**RESULTPATH_INPUT, "strings": {"string1": "foo", "string2": "bar", "string3": "baz"}}
    output = state_output(make_state(result_path="$.strings.lambdaresult"), raw, HELLO)
    assert output["strings"] == {"string1": "foo", "string2": "bar", "string3": "baz", "lambdaresult": HELLO}
    assert state_output(make_state(result_path="$.details"), RESULTPATH_INPUT, HELLO)["details"] == HELLO


def test_result_path_into_a_non_object_is_result_path_match_failure() -> None:
    with pytest.raises(StateError) as info:
        state_output(make_state(result_path="$.x"), "a string input", 1)
    assert info.value.error == RESULT_PATH_MATCH_FAILURE


def test_aws_catch_resultpath_keeps_the_input_and_adds_the_error() -> None:
    # input-output-resultpath.html, "Use ResultPath in a Catch to include both error and input"
    catcher = CatchRule(error_equals=("States.ALL",), next="NextTask", result_path="$.error")
    error = StateError("Error here", "it failed")
    assert catch_output(catcher, {"foo": "bar"}, error) == {
        "foo": "bar",
        "error": {"Error": "Error here", "Cause": "it failed"},
    }
    # default ResultPath "$": the error output replaces the input; null: the input passes unchanged
    assert catch_output(CatchRule(("States.ALL",), "N"), {"foo": "bar"}, error) == error.to_output()
    assert catch_output(CatchRule(("States.ALL",), "N", None), {"foo": "bar"}, error) == {"foo": "bar"}


# --- OutputPath / InputPath null and failures -----------------------------------------------------------


def test_null_input_path_and_output_path_give_an_empty_object() -> None:
    state = make_state(input_path=None, output_path=None)
    assert state_input(state, {"a": 1}) == {}
    assert state_output(state, {"a": 1}, {"b": 2}) == {}


def test_outputpath_selects_from_the_combined_output() -> None:
    state = make_state(result_path="$.r", output_path="$.r.x")
    assert state_output(state, {"keep": 1}, {"x": [1, 2]}) == [1, 2]


def test_missing_paths_fail_with_aws_error_names() -> None:
    with pytest.raises(StateError) as info:
        state_input(make_state(input_path="$.missing"), {})
    assert info.value.error == RUNTIME
    with pytest.raises(StateError) as info:
        state_input(make_state(parameters={"x.$": "$.missing"}), {})
    assert info.value.error == PARAMETER_PATH_FAILURE
    assert "$.missing" in info.value.cause
    with pytest.raises(StateError) as info:
        state_output(make_state(result_selector={"x.$": "$.missing"}), {}, {})
    assert info.value.error == PARAMETER_PATH_FAILURE
    with pytest.raises(StateError) as info:
        state_output(make_state(output_path="$.missing"), {}, {})
    assert info.value.error == RUNTIME


def test_parameters_reach_into_arrays_the_context_and_intrinsics() -> None:
    context = {"Execution": {"Id": "exec-1", "Name": "run"}, "State": {"Name": "S", "RetryCount": 0}}
    state = make_state(
        parameters={
            "list": [{"v.$": "$.a"}, "literal", 3],
            "exec.$": "$$.Execution.Id",
            "greeting.$": "States.Format('hi {} from {}', $.name, $$.State.Name)",
            "all.$": "$",
        }
    )
    assert state_input(state, {"a": 1, "name": "Ann"}, context) == {
        "list": [{"v": 1}, "literal", 3],
        "exec": "exec-1",
        "greeting": "hi Ann from S",
        "all": {"a": 1, "name": "Ann"},
    }


# --- Pass, Choice/Wait/Succeed outputs, Fail -------------------------------------------------------------


def test_pass_result_and_result_path() -> None:
    # state-pass.html: Result {"x-datum": 0.381018, "y-datum": 622.2269926397355} at ResultPath "$.coords"
    state = make_state(
        type="pass", result={"x-datum": 0.381018, "y-datum": 622.2269926397355}, result_path="$.coords"
    )
    raw = {"georefOf": "Home"}
    effective = state_input(state, raw)
    assert state_output(state, raw, pass_result(state, effective)) == {
        "georefOf": "Home",
        "coords": {"x-datum": 0.381018, "y-datum": 622.2269926397355},
    }


def test_pass_without_result_passes_its_parameters_on() -> None:
    state = make_state(type="pass", parameters={"v.$": "$.a"})
    effective = state_input(state, {"a": 5})
    assert state_output(state, {"a": 5}, pass_result(state, effective)) == {"v": 5}


def test_succeed_and_choice_apply_inputpath_then_outputpath() -> None:
    state = make_state(type="succeed", input_path="$.a", output_path="$.b")
    effective = effective_input(state, {"a": {"b": 7}})
    assert state_output(state, {"a": {"b": 7}}, effective) == 7


def test_fail_fields_literal_and_from_paths() -> None:
    assert fail_fields(make_state(type="fail", error="Bad", cause="because"), {}) == ("Bad", "because")
    assert fail_fields(make_state(type="fail"), {}) == (FAIL, "")
    state = make_state(type="fail", error_path="$.err.code", cause_path="$.err.why")
    assert fail_fields(state, {"err": {"code": "E42", "why": "no"}}) == ("E42", "no")
    with pytest.raises(StateError) as info:
        fail_fields(state, {"err": {"code": 42, "why": "no"}})
    assert info.value.error == RUNTIME


# --- Wait ---------------------------------------------------------------------------------------------

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def test_wait_seconds_and_timestamp() -> None:
    assert wait_until(make_state(type="wait", seconds=10), {}, NOW) == NOW + timedelta(seconds=10)
    state = make_state(type="wait", timestamp="2016-03-14T01:59:00Z")  # state-wait.html example
    assert wait_until(state, {}, NOW) == datetime(2016, 3, 14, 1, 59, tzinfo=UTC)


def test_wait_from_paths() -> None:
    # state-wait.html: "SecondsPath": "$.expirydate"-style reads from the effective input
    assert wait_until(make_state(type="wait", seconds_path="$.s"), {"s": 2.5}, NOW) == NOW + timedelta(
        seconds=2.5
    )
    state = make_state(type="wait", timestamp_path="$.expirydate")
    until = wait_until(state, {"expirydate": "2024-05-01T14:00:00+02:00"}, NOW)
    assert until == NOW  # 14:00 at +02:00 is 12:00 UTC
    for bad in ({"s": -1}, {"s": "3"}, {}):
        with pytest.raises(StateError) as info:
            wait_until(make_state(type="wait", seconds_path="$.s"), bad, NOW)
        assert info.value.error == RUNTIME
    with pytest.raises(StateError):
        wait_until(state, {"expirydate": "tomorrow"}, NOW)


def test_wait_keeps_the_kind_of_now() -> None:
    naive = datetime(2024, 5, 1, 12, 0, 0)
    assert wait_until(make_state(type="wait", timestamp="2024-05-01T13:00:00Z"), {}, naive) == datetime(
        2024, 5, 1, 13, 0
    )
    other = NOW.astimezone(timezone(timedelta(hours=3)))
    assert wait_until(make_state(type="wait", seconds=1), {}, other).utcoffset() == timedelta(hours=3)


# --- Map ----------------------------------------------------------------------------------------------


def test_aws_example_items_path() -> None:
    # input-output-itemspath.html: ItemsPath "$.ThingsPiratesSay"
    raw = {"ThingsPiratesSay": [{"say": "Avast!"}, {"say": "Yar!"}, {"say": "Walk the Plank!"}],
           "ThingsGiantsSay": [{"say": "Fee!"}, {"say": "Fi!"}, {"say": "Fo!"}, {"say": "Fum!"}]}  # fmt: skip
    state = make_state(type="map", items_path="$.ThingsPiratesSay")
    effective = state_input(state, raw)
    items = map_items(state, effective)
    assert items == [{"say": "Avast!"}, {"say": "Yar!"}, {"say": "Walk the Plank!"}]
    assert [item_input(state, item, i, raw) for i, item in enumerate(items)] == items


def test_aws_example_item_selector() -> None:
    # input-output-itemselector.html: {"size": 10, "value.$": "$$.Map.Item.Value"}
    raw = [
        {"resize": "true", "format": "jpg"},
        {"resize": "false", "format": "png"},
        {"resize": "true", "format": "jpg"},
    ]
    state = make_state(type="map", item_selector={"size": 10, "value.$": "$$.Map.Item.Value"})
    items = map_items(state, state_input(state, raw))
    assert item_input(state, items[0], 0, raw) == {"size": 10, "value": {"resize": "true", "format": "jpg"}}


def test_legacy_map_parameters_apply_per_item_with_index_and_input() -> None:
    # state-map.html (legacy Parameters): {"parcel.$": "$$.Map.Item.Value", "courier.$": "$.delivery-partner"}
    raw = {"ship-date": "2016-03-14T01:59:00Z",
           "detail": {"delivery-partner": "UQS",
                      "shipped": [{"prod": "R31", "dest-code": 9511, "quantity": 1344},
                                  {"prod": "S39", "dest-code": 9511, "quantity": 40}]}}  # fmt: skip
    state = make_state(
        type="map",
        input_path="$.detail",
        items_path="$.shipped",
        parameters={
            "parcel.$": "$$.Map.Item.Value",
            "courier.$": "$.delivery-partner",
            "n.$": "$$.Map.Item.Index",
        },
    )
    effective = state_input(state, raw)
    assert effective == raw["detail"]  # Parameters are not applied to the Map's own input
    items = map_items(state, effective, {"Execution": {"Id": "e"}})
    assert item_input(state, items[1], 1, raw, {"Execution": {"Id": "e"}}) == {
        "parcel": {"prod": "S39", "dest-code": 9511, "quantity": 40},
        "courier": "UQS",
        "n": 1,
    }


def test_items_path_that_is_not_an_array_fails() -> None:
    state = make_state(type="map", items_path="$.x")
    with pytest.raises(StateError) as info:
        map_items(state, {"x": {"not": "a list"}})
    assert info.value.error == RUNTIME


# --- intrinsic functions (intrinsic-functions.html; each value below is the page's example) --------------


@pytest.mark.parametrize(
    ("expression", "data", "expected"),
    [
        ("States.Array($.Id)", {"Id": 123456}, [123456]),
        ("States.Array('a', 1, true, null, $.x)", {"x": {"k": 1}}, ["a", 1, True, None, {"k": 1}]),
        ("States.Array()", {}, []),
        ("States.ArrayPartition($.inputArray,4)", {"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9]},
         [[1, 2, 3, 4], [5, 6, 7, 8], [9]]),
        ("States.ArrayContains($.inputArray, $.lookingFor)",
         {"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9], "lookingFor": 5}, True),
        ("States.ArrayContains($.a, 'x')", {"a": [1, "y"]}, False),
        ("States.ArrayRange(1, 9, 2)", {}, [1, 3, 5, 7, 9]),
        ("States.ArrayRange(10, 0, -5)", {}, [10, 5, 0]),
        ("States.ArrayGetItem($.inputArray, $.index)",
         {"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9], "index": 5}, 6),
        ("States.ArrayLength($.inputArray)", {"inputArray": [1, 2, 3, 4, 5, 6, 7, 8, 9]}, 9),
        ("States.ArrayUnique($.inputArray)", {"inputArray": [1, 2, 3, 3, 3, 3, 3, 3, 4]}, [1, 2, 3, 4]),
        ("States.Base64Encode($.input)", {"input": "Data to encode"}, "RGF0YSB0byBlbmNvZGU="),
        ("States.Base64Decode($.base64)", {"base64": "RGF0YSB0byBlbmNvZGU="}, "Data to encode"),
        ("States.JsonMerge($.json1, $.json2, false)",
         {"json1": {"a": {"a1": 1, "a2": 2}, "b": 2}, "json2": {"a": {"a3": 1, "a4": 2}, "c": 3}},
         {"a": {"a3": 1, "a4": 2}, "b": 2, "c": 3}),
        ("States.StringToJson($.escapedJsonString)", {"escapedJsonString": '{"foo": "bar"}'}, {"foo": "bar"}),
        ("States.JsonToString($.unescapedJson)", {"unescapedJson": {"foo": "bar"}}, '{"foo":"bar"}'),
        ("States.MathAdd($.value1, $.step)", {"value1": 111, "step": -1}, 110),
        ("States.MathAdd(1.4, 2.6)", {}, 4),  # non-integers are rounded to the nearest integer
        ("States.StringSplit($.inputString, $.splitter)", {"inputString": "1,2,3,4,5", "splitter": ","},
         ["1", "2", "3", "4", "5"]),
        ("States.StringSplit($.inputString, $.splitter)",
         {"inputString": "This.is+a,test=string", "splitter": ".+,="}, ["This", "is", "a", "test", "string"]),
        ("States.Format('Hello, my name is {}.', $.name)", {"name": "Arnav"}, "Hello, my name is Arnav."),
        ("States.Format($.template, $.name)", {"name": "Arnav", "template": "Hello, my name is {}."},
         "Hello, my name is Arnav."),
        ("States.Format('{} {} {} {}', 1, 2.5, true, null)", {}, "1 2.5 true null"),
        ("States.Format('it\\'s \\{literal\\} \\\\ {}', 'x')", {}, "it's {literal} \\ x"),
    ],
)  # fmt: skip
def test_intrinsic_examples(expression: str, data: Any, expected: Any) -> None:
    assert intrinsics.check(expression) is None
    assert intrinsics.evaluate(expression, data) == expected


def test_intrinsic_hash_uses_the_named_algorithm() -> None:
    data = {"Data": "input data", "Algorithm": "SHA-1"}
    digest = intrinsics.evaluate("States.Hash($.Data, $.Algorithm)", data)
    assert digest == hashlib.sha1(b"input data").hexdigest()
    assert digest.startswith("aaff4a450a104cd177d28d18d7")  # the page's example value
    for name, algo in (("MD5", "md5"), ("SHA-256", "sha256"), ("SHA-384", "sha384"), ("SHA-512", "sha512")):
        assert intrinsics.evaluate(f"States.Hash('x', '{name}')", {}) == hashlib.new(algo, b"x").hexdigest()


def test_intrinsic_random_and_uuid() -> None:
    values = {
        intrinsics.evaluate("States.MathRandom($.start, $.end)", {"start": 1, "end": 4}) for _ in range(300)
    }
    assert values == {1, 2, 3}  # start inclusive, end exclusive
    seeded = [intrinsics.evaluate("States.MathRandom(1, 1000, 7)", {}) for _ in range(3)]
    assert len(set(seeded)) == 1  # the same seed gives the same number
    value = intrinsics.evaluate("States.UUID()", {})
    assert uuid.UUID(value).version == 4


def test_intrinsic_nesting_from_the_aws_page() -> None:
    expression = (
        "States.Format('{}.{}.{}', States.ArrayGetItem(States.StringSplit(States.ArrayGetItem("
        "States.StringSplit($.ImageRecipe.Arn, '/'), 2), '.'), 0), States.ArrayGetItem(States.StringSplit("
        "States.ArrayGetItem(States.StringSplit($.ImageRecipe.Arn, '/'), 2), '.'), 1), $$.Execution.Name)"
    )
    data = {"ImageRecipe": {"Arn": "arn:aws:imagebuilder:us-east-1:1:image-recipe/my.recipe/1.0.0"}}
    assert (
        intrinsics.evaluate(expression, data, {"Execution": {"Name": "run"}}) == "1.0.run"
    )  # piece 2 of the ARN split on "/", then its parts 0 and 1


@pytest.mark.parametrize(
    "expression",
    [
        "States.ArrayGetItem($.a, 5)",
        "States.ArrayPartition($.a, 0)",
        "States.ArrayRange(1, 5000, 1)",
        "States.ArrayRange(1, 5, 0)",
        "States.Format('{} {}', 1)",
        "States.Format('{}', $.a)",  # an array is not a Format argument
        "States.StringToJson('not json')",
        "States.Base64Decode('***')",
        "States.Hash('x', 'SHA-999')",
        "States.JsonMerge($.o, $.o, true)",
        "States.MathAdd(1, 'x')",
        "States.MathAdd(2147483648, 1)",
        "States.MathRandom(5, 5)",
        "States.ArrayLength($.missing)",
        "States.Nope()",
        "States.Array($.a",
    ],
)
def test_intrinsic_failures_are_intrinsic_failure(expression: str) -> None:
    with pytest.raises(StateError) as info:
        intrinsics.evaluate(expression, {"a": [1, 2], "o": {}})
    assert info.value.error == INTRINSIC_FAILURE


def test_base64_length_limit() -> None:
    with pytest.raises(StateError):
        intrinsics.evaluate("States.Base64Encode($.s)", {"s": "x" * 10_001})
    assert base64.b64decode(intrinsics.evaluate("States.Base64Encode($.s)", {"s": "é"})).decode() == "é"


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("States.Nope(1)", "unknown intrinsic function"),
        ("States.UUID(1)", "takes 0 arguments"),
        ("States.JsonMerge($.a, $.b)", "takes 3 arguments"),
        ("States.Array(", "expected an argument"),
        ("States.Format('x\\q')", "open escape"),
        ("States.Array($.a[)", "bad path"),
        ("States.Array(1) trailing", "unexpected"),
    ],
)
def test_intrinsic_check_reports_syntax(expression: str, reason: str) -> None:
    message = intrinsics.check(expression)
    assert message is not None and reason in message, message


def test_templates_survive_a_json_round_trip() -> None:
    # the stored definition is JSON; a resolved template must be plain JSON again
    state = make_state(parameters={"a.$": "States.Array($.x, 'y')"})
    assert json.loads(json.dumps(state_input(state, {"x": 1}))) == {"a": [1, "y"]}
