"""Per-webhook request limits: a fixed window per minute (aligned to the wall-clock minute), counted in
this process.

Exact on one node: the check and the increment happen in one synchronous step on the event loop, so
however many requests arrive at once, exactly `limit` pass in each window and the rest get 429 with
`Retry-After` (the seconds left in the window). A fixed window lets a sender spend one window's budget
at its end and the next one's at its start; that is the usual trade (GitHub's and most APIs' per-minute
limits work so) for a counter that is one integer per webhook.

Several nodes: each node counts its own requests, so N nodes let up to N * limit through. A shared
limit needs a shared counter per (webhook, window): PostgreSQL's `INSERT ... ON CONFLICT (webhook_id,
window) DO UPDATE SET count = count + 1 RETURNING count` (one round trip per request), or Redis
`INCR` + `EXPIRE`. The `Limiter` protocol below is the seam for that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

WINDOW_SEC = 60.0


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int  # requests left in this window after this one
    reset_at: float  # unix seconds when the window ends
    window: int  # the window's number (unix seconds // 60): accepted calls per window never exceed limit

    def retry_after(self, now: float) -> int:
        """Whole seconds until the window ends (at least 1): the `Retry-After` of a 429."""
        return max(1, math.ceil(self.reset_at - now))

    def headers(self, now: float) -> dict[str, str]:
        values = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(math.ceil(self.reset_at)),
        }
        if not self.allowed:
            values["Retry-After"] = str(self.retry_after(now))
        return values


class Limiter(Protocol):
    def hit(self, key: str, limit: int, now: float) -> Decision: ...

    def forget(self, key: str) -> None: ...


class FixedWindowLimiter:
    """In-process counters: {key: (window number, requests counted in it)}."""

    def __init__(self, window_sec: float = WINDOW_SEC) -> None:
        self.window_sec = window_sec
        self._counts: dict[str, tuple[int, int]] = {}

    def hit(self, key: str, limit: int, now: float) -> Decision:
        """Count one request against `key`'s `limit` in the window holding `now`; a refused request is
        not counted (it used nothing)."""
        window = int(now // self.window_sec)
        reset_at = (window + 1) * self.window_sec
        current, count = self._counts.get(key, (window, 0))
        if current != window:
            count = 0
        if count >= limit:
            return Decision(False, limit, 0, reset_at, window)
        count += 1
        self._counts[key] = (window, count)
        return Decision(True, limit, limit - count, reset_at, window)

    def forget(self, key: str) -> None:
        """Drop a key's counter (its webhook was deleted)."""
        self._counts.pop(key, None)

    def count(self, key: str, now: float) -> int:
        """Requests counted for `key` in the window holding `now`."""
        current, count = self._counts.get(key, (-1, 0))
        return count if current == int(now // self.window_sec) else 0
