"""Workflow errors and AWS's rules for Retry and Catch: which rule matches an error, how long to wait.

A state fails with a `StateError` (an error name such as "States.TaskFailed" or a function's own error
type, plus a cause). Retriers and catchers list error names in `error_equals`; the rules follow AWS Step
Functions ("Error handling in Step Functions"):
- "States.ALL" matches every error except the terminal ones (States.Runtime, States.DataLimitExceeded) and
  a cancel (States.Cancelled, ours); it must be alone in its list and the list's last rule (validate.py).
- "States.TaskFailed" matches every error "States.ALL" matches except States.Timeout.
- Any other name matches that error exactly.
- The first retrier whose list matches is the one used, and each retrier counts its own retries: when
  it has made `max_attempts` retries the error goes on to the catchers (it does not fall through to a
  later retrier).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from engine.workflows.model import (
    ALL,
    CANCELLED,
    DATA_LIMIT_EXCEEDED,
    RUNTIME,
    TASK_FAILED,
    TIMEOUT,
    CatchRule,
    RetryRule,
)

# Errors that end the execution whatever its Retry/Catch say (AWS: States.ALL does not match them).
TERMINAL_ERRORS: frozenset[str] = frozenset({RUNTIME, DATA_LIMIT_EXCEEDED, CANCELLED})
# Never caught or retried even when named (a cancel must stop the execution).
UNCATCHABLE: frozenset[str] = frozenset({CANCELLED})


class StateError(Exception):
    """A state failed with AWS-style `error` (a name) and `cause` (a human-readable message)."""

    def __init__(self, error: str, cause: str = "") -> None:
        self.error = error
        self.cause = cause
        super().__init__(f"{error}: {cause}" if cause else error)

    def to_output(self) -> dict[str, str]:
        """The error output a catcher passes on (AWS: {"Error": ..., "Cause": ...})."""
        return {"Error": self.error, "Cause": self.cause}

    @classmethod
    def from_output(cls, output: Mapping[str, Any]) -> StateError:
        return cls(str(output.get("Error") or TASK_FAILED), str(output.get("Cause") or ""))


def matches(error_equals: Sequence[str], error: str) -> bool:
    """Whether a retrier's or catcher's `error_equals` list matches the error name."""
    if error in UNCATCHABLE:
        return False
    for name in error_equals:
        if name == error:
            return True
        if name == ALL and error not in TERMINAL_ERRORS:
            return True
        if name == TASK_FAILED and error not in TERMINAL_ERRORS and error != TIMEOUT:
            return True
    return False


def retrier_index(rules: Sequence[RetryRule], error: str) -> int | None:
    """The index of the retrier that handles the error (the first whose list matches), or None."""
    for i, rule in enumerate(rules):
        if matches(rule.error_equals, error):
            return i
    return None


def backoff(rule: RetryRule, retry_number: int) -> float:
    """The delay before retry `retry_number` (1-based) without jitter: interval * rate**(n-1), capped."""
    delay = rule.interval_seconds * rule.backoff_rate ** max(0, retry_number - 1)
    if rule.max_delay_seconds is not None:
        delay = min(delay, rule.max_delay_seconds)
    return delay


def retry_delay(
    rules: Sequence[RetryRule],
    error: str,
    attempt: int,
    *,
    counts: Mapping[int, int] | None = None,
    rng: random.Random | None = None,
) -> float | None:
    """Seconds to wait before the next attempt, or None when the error is not retried any more.

    `attempt` is the number of attempts already made (1 after the first failure). AWS counts retries per
    retrier: when different errors were retried by different retriers, pass `counts` (retrier index ->
    retries it already made; see `retrier_index`) and `attempt` is then ignored. Without `counts` all the
    attempts so far are taken as retries of the matching retrier (`attempt - 1` retries made).
    JitterStrategy FULL draws the delay uniformly between 0 and the computed (capped) backoff.
    """
    index = retrier_index(rules, error)
    if index is None:
        return None
    rule = rules[index]
    made = counts.get(index, 0) if counts is not None else max(0, attempt - 1)
    if made >= rule.max_attempts:
        return None
    delay = backoff(rule, made + 1)
    if rule.jitter:
        delay = (rng or random).uniform(0.0, delay)
    return delay


def find_catcher(rules: Sequence[CatchRule], error: str) -> CatchRule | None:
    """The first catcher whose `error_equals` matches the error (AWS checks them in order), or None."""
    for rule in rules:
        if matches(rule.error_equals, error):
            return rule
    return None
