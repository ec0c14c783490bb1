"""Choice rules: every comparator, and/or/not, type tests, and the AWS rules for missing values and
types ("Choice workflow state", state-choice.html, and the Amazon States Language spec's Choice rules)."""

from __future__ import annotations

from typing import Any

import pytest

from engine.workflows.choice import COMPARATORS, check_rule, choose, evaluate
from engine.workflows.errors import StateError
from engine.workflows.model import NO_CHOICE_MATCHED, RUNTIME, State, parse_definition


def choice_state(choices: list[dict], default: str | None = None) -> State:
    states: dict[str, Any] = {"C": {"type": "choice", "choices": choices}}
    if default:
        states["C"]["default"] = default
    for rule in choices:
        states.setdefault(rule["next"], {"type": "succeed"})
    if default:
        states.setdefault(default, {"type": "succeed"})
    return parse_definition({"start_at": "C", "states": states}).states["C"]


# state-choice.html, "Choice state example"
AWS_EXAMPLE = choice_state(
    [
        {"not": {"variable": "$.type", "string_equals": "Private"}, "next": "Public"},
        {"variable": "$.value", "numeric_equals": 0, "next": "ValueIsZero"},
        {
            "and": [
                {"variable": "$.value", "numeric_greater_than_equals": 20},
                {"variable": "$.value", "numeric_less_than": 30},
            ],
            "next": "ValueInTwenties",
        },
    ],
    default="DefaultState",
)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"type": "Public", "value": 22}, "Public"),
        ({"type": "Private", "value": 0}, "ValueIsZero"),
        ({"type": "Private", "value": 22}, "ValueInTwenties"),
        ({"type": "Private", "value": 30}, "DefaultState"),
        ({"type": "Private", "value": 19.5}, "DefaultState"),
    ],
)
def test_aws_choice_example(data: dict, expected: str) -> None:
    assert choose(AWS_EXAMPLE, data) == expected


def test_first_matching_rule_wins_then_default_then_no_choice_matched() -> None:
    state = choice_state(
        [
            {"variable": "$.n", "numeric_greater_than": 1, "next": "A"},
            {"variable": "$.n", "numeric_greater_than": 0, "next": "B"},
        ]
    )
    assert choose(state, {"n": 5}) == "A"
    assert choose(state, {"n": 1}) == "B"
    with pytest.raises(StateError) as info:
        choose(state, {"n": 0})
    assert info.value.error == NO_CHOICE_MATCHED


def rule(comparator: str, value: Any, variable: str = "$.v") -> dict[str, Any]:
    return {"variable": variable, comparator: value}


@pytest.mark.parametrize(
    ("comparator", "expected", "value", "result"),
    [
        ("string_equals", "abc", "abc", True),
        ("string_equals", "abc", "abd", False),
        ("string_equals", "1", 1, False),  # wrong type: false, not an error
        ("string_not_equals", "abc", "abd", True),
        ("string_less_than", "b", "a", True),
        ("string_less_than", "b", "b", False),
        ("string_greater_than", "b", "c", True),
        ("string_less_than_equals", "b", "b", True),
        ("string_greater_than_equals", "b", "a", False),
        ("numeric_equals", 3, 3.0, True),
        ("numeric_equals", 3, "3", False),
        ("numeric_equals", 1, True, False),  # a boolean is not a number
        ("numeric_not_equals", 3, 4, True),
        ("numeric_less_than", 3, 2.5, True),
        ("numeric_greater_than", 3, 3, False),
        ("numeric_less_than_equals", 3, 3, True),
        ("numeric_greater_than_equals", 3, 2, False),
        ("boolean_equals", True, True, True),
        ("boolean_equals", True, 1, False),
        ("boolean_equals", False, False, True),
        ("timestamp_equals", "2024-01-01T00:00:00Z", "2024-01-01T01:00:00+01:00", True),
        ("timestamp_less_than", "2024-01-02T00:00:00Z", "2024-01-01T23:59:59Z", True),
        ("timestamp_greater_than", "2024-01-02T00:00:00Z", "2024-01-01T23:59:59Z", False),
        ("timestamp_less_than_equals", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z", True),
        ("timestamp_greater_than_equals", "2024-01-01T00:00:00Z", "2025-06-01T00:00:00.123Z", True),
        ("timestamp_not_equals", "2024-01-01T00:00:00Z", "2024-01-01T00:00:01Z", True),
        ("timestamp_equals", "2024-01-01T00:00:00Z", "not a time", False),
        ("is_null", True, None, True),
        ("is_null", True, 0, False),
        ("is_null", False, "x", True),
        ("is_numeric", True, 1.5, True),
        ("is_numeric", True, False, False),
        ("is_string", True, "", True),
        ("is_string", True, 1, False),
        ("is_boolean", True, False, True),
        ("is_boolean", True, "true", False),
        ("is_timestamp", True, "2016-08-18T17:33:00Z", True),
        ("is_timestamp", True, "2016-08-18", False),
        ("is_timestamp", False, 12, True),
        ("is_present", True, None, True),  # present with a null value
    ],
)
def test_comparators(comparator: str, expected: Any, value: Any, result: bool) -> None:
    assert evaluate(rule(comparator, expected), {"v": value}) is result


@pytest.mark.parametrize(
    ("pattern", "value", "result"),
    [
        ("log-*.txt", "log-2024-01.txt", True),  # the ASL spec's example
        ("log-*.txt", "log-.txt", True),
        ("log-*.txt", "log-2024.txt.gz", False),
        ("*.log", "a.log", True),
        ("*", "", True),
        ("a*b*c", "aXXbYYc", True),
        ("a*b*c", "aXXcYYb", False),
        ("foo\\*bar", "foo*bar", True),  # \\* is a literal star
        ("foo\\*bar", "fooXbar", False),
        ("back\\\\slash*", "back\\slash!", True),  # \\\\ is a backslash
        ("a.c", "abc", False),  # regex characters are literal
        ("(x)", "(x)", True),
        ("LOG*", "log", False),  # case-sensitive
    ],
)
def test_string_matches(pattern: str, value: str, result: bool) -> None:
    assert evaluate(rule("string_matches", pattern), {"v": value}) is result


def test_path_variants_compare_with_another_value_in_the_input() -> None:
    data = {"v": 5, "limit": 10, "name": "b", "other": "a", "flag": True, "t": "2024-01-01T00:00:00Z",
            "t2": "2024-06-01T00:00:00Z"}  # fmt: skip
    assert evaluate(rule("numeric_less_than_path", "$.limit"), data)
    assert not evaluate(rule("numeric_greater_than_equals_path", "$.limit"), data)
    assert evaluate(rule("numeric_equals_path", "$.v"), data)
    assert evaluate(rule("string_greater_than_path", "$.other", "$.name"), data)
    assert evaluate(rule("string_equals_path", "$.name", "$.name"), data)
    assert evaluate(rule("boolean_equals_path", "$.flag", "$.flag"), data)
    assert evaluate(rule("timestamp_less_than_path", "$.t2", "$.t"), data)
    assert evaluate(rule("timestamp_less_than_equals_path", "$.t", "$.t"), data)
    assert not evaluate(rule("string_less_than_equals_path", "$.other", "$.name"), data)
    with pytest.raises(StateError) as info:
        evaluate(rule("numeric_equals_path", "$.nope"), data)
    assert info.value.error == RUNTIME


def test_every_comparator_has_a_path_variant_except_matches_and_type_tests() -> None:
    plain = [c for c in COMPARATORS if not c.endswith("_path")]
    for name in plain:
        kind = COMPARATORS[name][0]
        has_path = f"{name}_path" in COMPARATORS
        assert has_path is (kind not in ("matches", "type") and not name.endswith("_not_equals")), name


def test_missing_variable_is_a_runtime_error_except_for_is_present() -> None:
    with pytest.raises(StateError) as info:
        evaluate(rule("string_equals", "x", "$.missing"), {})
    assert info.value.error == RUNTIME
    assert evaluate(rule("is_present", False, "$.missing"), {}) is True
    assert evaluate(rule("is_present", True, "$.missing"), {}) is False
    # the AWS idiom: And [IsPresent, comparison] short-circuits before the comparison fails
    guarded = {"and": [rule("is_present", True, "$.missing"), rule("string_equals", "x", "$.missing")]}
    assert evaluate(guarded, {}) is False


def test_nested_boolean_rules() -> None:
    nested = {
        "or": [
            {"and": [rule("is_string", True, "$.a"), {"not": rule("string_equals", "skip", "$.a")}]},
            rule("numeric_greater_than", 100, "$.b"),
        ]
    }
    assert evaluate(nested, {"a": "go", "b": 1})
    assert not evaluate(nested, {"a": "skip", "b": 1})
    assert evaluate(nested, {"a": "skip", "b": 101})
    assert evaluate(rule("string_equals", "x", "$.items[0].name"), {"items": [{"name": "x"}]})


@pytest.mark.parametrize(
    ("bad_rule", "path", "message"),
    [
        ({"variable": "$.x"}, "choices[0]", "no comparator"),
        ({"variable": "$.x", "string_equals": "a", "numeric_equals": 1}, "choices[0]", "one comparator"),
        ({"variable": "$.x", "numeric_equals": "1"}, "choices[0].numeric_equals", "must be a number"),
        ({"variable": "$.x", "numeric_equals": True}, "choices[0].numeric_equals", "must be a number"),
        ({"variable": "$.x", "string_equals": 1}, "choices[0].string_equals", "must be a string"),
        ({"variable": "$.x", "boolean_equals": "true"}, "choices[0].boolean_equals", "true or false"),
        ({"variable": "$.x", "is_present": 1}, "choices[0].is_present", "true or false"),
        ({"variable": "$.x", "timestamp_equals": "yesterday"}, "choices[0].timestamp_equals", "ISO 8601"),
        ({"variable": "$.x", "numeric_equals_path": "x"}, "choices[0].numeric_equals_path", "JSONPath"),
        ({"variable": "x.y", "is_null": True}, "choices[0].variable", "bad JSONPath"),
        ({"string_equals": "a"}, "choices[0].variable", "required"),
        ({"variable": "$.x", "strng_equals": "a", "is_null": True}, "choices[0].strng_equals", "not a field"),
        ({"and": []}, "choices[0].and", "at least one rule"),
        ({"and": [{"variable": "$.x"}]}, "choices[0].and[0]", "no comparator"),
        ({"not": {"variable": "$.x", "is_null": True, "next": "B"}}, "choices[0].not.next", "top-level"),
        ({"or": [{"variable": "$.x", "is_null": "yes"}]}, "choices[0].or[0].is_null", "true or false"),
        ({"and": [{"variable": "$.x", "is_null": True}], "variable": "$.y"}, "choices[0]", "either"),
    ],
)  # fmt: skip
def test_check_rule_names_each_problem_with_its_path(bad_rule: dict, path: str, message: str) -> None:
    problems = check_rule(bad_rule, "choices[0]")
    assert any(p.path == path and message in p.message for p in problems), problems


def test_check_rule_accepts_good_rules() -> None:
    for good in AWS_EXAMPLE.choices:
        assert check_rule(good, "choices[0]") == []
    assert check_rule({"variable": "$$.Execution.Input.x", "is_present": True, "next": "A"}, "c") == []
