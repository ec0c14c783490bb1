"""Retry and Catch follow AWS Step Functions' error-handling rules ("Error handling in Step Functions":
Retrier fields MaxAttempts (default 3), IntervalSeconds (default 1), BackoffRate (default 2.0),
MaxDelaySeconds, JitterStrategy; States.ALL / States.TaskFailed wildcards; catchers tried in order)."""

from __future__ import annotations

import random

import pytest

from engine.workflows.errors import StateError, backoff, find_catcher, matches, retrier_index, retry_delay
from engine.workflows.model import (
    ALL,
    CANCELLED,
    DATA_LIMIT_EXCEEDED,
    RUNTIME,
    TASK_FAILED,
    TIMEOUT,
    CatchRule,
    RetryRule,
    parse_definition,
)


def _retry_rules(raw: list[dict]) -> tuple[RetryRule, ...]:
    body = {"type": "task", "function_id": "f", "end": True, "retry": raw}
    return parse_definition({"start_at": "T", "states": {"T": body}}).states["T"].retry


def test_state_error_output_is_aws_error_and_cause() -> None:
    err = StateError("MyError", "it broke")
    assert err.to_output() == {"Error": "MyError", "Cause": "it broke"}
    assert StateError.from_output(err.to_output()).error == "MyError"


@pytest.mark.parametrize(
    ("names", "error", "expected"),
    [
        ([ALL], "Custom.Error", True),
        ([ALL], TIMEOUT, True),
        ([ALL], TASK_FAILED, True),
        ([ALL], RUNTIME, False),  # terminal: States.ALL does not match it
        ([ALL], DATA_LIMIT_EXCEEDED, False),
        ([DATA_LIMIT_EXCEEDED], DATA_LIMIT_EXCEEDED, True),  # named explicitly it matches
        ([TASK_FAILED], "ValueError", True),  # TaskFailed is a wildcard for task errors ...
        ([TASK_FAILED], TIMEOUT, False),  # ... except States.Timeout
        (["ValueError"], "ValueError", True),
        (["ValueError"], "valueerror", False),  # error names are case-sensitive
        (["A", "B"], "B", True),
        ([ALL], CANCELLED, False),  # a cancel is never caught or retried
        ([CANCELLED], CANCELLED, False),
    ],
)
def test_matching(names: list[str], error: str, expected: bool) -> None:
    assert matches(names, error) is expected


def test_defaults_give_aws_sequence_1_2_4_then_stop() -> None:
    rules = _retry_rules([{"error_equals": [ALL]}])
    assert rules[0].max_attempts == 3 and rules[0].interval_seconds == 1 and rules[0].backoff_rate == 2
    delays = [retry_delay(rules, "Boom", attempt) for attempt in range(1, 5)]
    assert delays == [1.0, 2.0, 4.0, None]


def test_interval_rate_and_max_delay_cap() -> None:
    rules = _retry_rules(
        [
            {
                "error_equals": ["E"],
                "max_attempts": 6,
                "interval_seconds": 3,
                "backoff_rate": 3,
                "max_delay_seconds": 50,
            }
        ]
    )
    assert [retry_delay(rules, "E", n) for n in range(1, 8)] == [3, 9, 27, 50, 50, 50, None]


def test_max_attempts_zero_never_retries() -> None:
    rules = _retry_rules([{"error_equals": ["E"], "max_attempts": 0}])
    assert retry_delay(rules, "E", 1) is None


def test_unmatched_error_is_not_retried() -> None:
    rules = _retry_rules([{"error_equals": ["E"]}])
    assert retry_delay(rules, "Other", 1) is None
    assert retrier_index(rules, "Other") is None


def test_full_jitter_stays_between_zero_and_backoff() -> None:
    rules = _retry_rules(
        [{"error_equals": [ALL], "max_attempts": 5, "interval_seconds": 2, "jitter_strategy": "FULL",
          "max_delay_seconds": 10}]
    )  # fmt: skip
    rng = random.Random(7)
    for attempt in range(1, 6):
        ceiling = backoff(rules[0], attempt)
        seen = [retry_delay(rules, "X", attempt, rng=rng) for _ in range(200)]
        assert all(d is not None and 0 <= d <= ceiling for d in seen)
        assert max(d for d in seen if d is not None) > ceiling / 2  # really spread, not constant
        assert len(set(seen)) > 100
    assert [backoff(rules[0], n) for n in range(1, 6)] == [2, 4, 8, 10, 10]


def test_each_retrier_counts_its_own_retries() -> None:
    rules = _retry_rules(
        [
            {"error_equals": [TIMEOUT], "max_attempts": 1, "interval_seconds": 5},
            {"error_equals": [ALL], "max_attempts": 2, "interval_seconds": 1},
        ]
    )
    counts: dict[int, int] = {}
    # first failure: a timeout -> retrier 0, its first retry
    assert retrier_index(rules, TIMEOUT) == 0
    assert retry_delay(rules, TIMEOUT, 1, counts=counts) == 5
    counts[0] = 1
    # then another error -> retrier 1 has made no retries yet, so its first interval
    assert retry_delay(rules, "Boom", 2, counts=counts) == 1
    counts[1] = 1
    assert retry_delay(rules, "Boom", 3, counts=counts) == 2
    counts[1] = 2
    assert retry_delay(rules, "Boom", 4, counts=counts) is None
    # retrier 0 is used up: a timeout does not fall through to the States.ALL retrier
    assert retry_delay(rules, TIMEOUT, 4, counts=counts) is None


def test_single_retry_object_is_accepted() -> None:
    body = {
        "type": "task",
        "function_id": "f",
        "end": True,
        "retry": {"error_equals": ["E"], "max_attempts": 1},
    }
    rules = parse_definition({"start_at": "T", "states": {"T": body}}).states["T"].retry
    assert [retry_delay(rules, "E", n) for n in (1, 2)] == [1.0, None]


def test_catchers_are_tried_in_order() -> None:
    rules = (
        CatchRule(error_equals=("ValueError",), next="OnValue"),
        CatchRule(error_equals=(TASK_FAILED,), next="OnTask"),
        CatchRule(error_equals=(ALL,), next="OnAny", result_path="$.error"),
    )
    assert find_catcher(rules, "ValueError").next == "OnValue"
    assert find_catcher(rules, "KeyError").next == "OnTask"
    assert find_catcher(rules, TIMEOUT).next == "OnAny"  # TaskFailed skips timeouts
    assert find_catcher(rules, RUNTIME) is None
    assert find_catcher((), "ValueError") is None
