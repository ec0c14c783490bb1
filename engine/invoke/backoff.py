"""Retry delays: exponential backoff with full jitter (a pure function, so policies are easy to test)."""

from __future__ import annotations

import random


def backoff_delay(
    attempt: int, base_ms: float, max_ms: float, jitter: bool = True, rng: random.Random | None = None
) -> float:
    """Seconds to wait before the retry that follows attempt number `attempt` (1 = the first run failed).

    The ceiling doubles each attempt: base, 2*base, 4*base ... capped at `max_ms`. With `jitter`
    the delay is uniform in [0, ceiling] ("full jitter"), which spreads retries of jobs that failed
    together (one outage) instead of stampeding back in lockstep; without it, the ceiling itself.
    """
    if base_ms <= 0 or max_ms <= 0:
        return 0.0
    exponent = min(max(attempt, 1) - 1, 62)  # 2**62 ms is already far past any cap
    ceiling_ms = min(float(max_ms), float(base_ms) * 2**exponent)
    if jitter:
        return (rng or random).uniform(0.0, ceiling_ms) / 1000
    return ceiling_ms / 1000
