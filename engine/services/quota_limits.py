"""Quota limits and the in-memory invocation counter that enforces the invocation ones.

The limits are settings (engine/services/setting_specs.py registry; the Settings page lists them too):
this is the one place their defaults live. The counter counts invocations admitted in the current UTC
day and month without touching the database; engine/services/quotas.py seeds it from the rollups."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from engine.errors import QuotaExceeded
from engine.services.setting_specs import SettingSpec, register, register_group

# --- the limits: settings (engine/services/setting_specs.py), the one place their defaults live ------

register_group("quota", "Quotas")
KB, MB = 1024, 1024 * 1024
WARNING_THRESHOLD = "quota.warning_threshold"


def _limit(key: str, default: int, label: str, description: str, unit: str, low: int = 1) -> SettingSpec:
    return SettingSpec(
        key, "int", default, "quota", label, description, minimum=low, maximum=10**12, unit=unit
    )


LIMIT_SPECS = (
    _limit("quota.max_functions", 100, "Max functions", "Functions that may exist.", ""),
    _limit(
        "quota.max_memory_mb",
        10240,
        "Max configured memory",
        "The memory limits of all functions added up.",
        "MB",
        128,
    ),
    _limit(
        "quota.max_invocations_per_day",
        100_000,
        "Max invocations per day",
        "Invocations per UTC day; beyond it invocations are refused with 429.",
        "",
    ),
    _limit(
        "quota.max_invocations_per_month",
        3_000_000,
        "Max invocations per month",
        "Invocations per UTC month; beyond it invocations are refused with 429.",
        "",
    ),
    _limit(
        "quota.max_code_size_kb",
        50 * 1024,
        "Max code storage",
        "The files of every function and published version together.",
        "KiB",
    ),
    _limit("quota.max_layer_storage_mb", 2048, "Max layer storage", "Every layer version's zip.", "MB"),
    _limit("quota.max_log_storage_mb", 1024, "Max log storage", "Captured invocation logs.", "MB"),
    _limit(
        "quota.max_record_storage_mb",
        4096,
        "Max record storage",
        "Invocation records, their attempts and DLQ messages.",
        "MB",
    ),
    _limit("quota.max_workflows", 100, "Max workflows", "Workflows that may exist.", ""),
)
register(
    *LIMIT_SPECS,
    SettingSpec(
        WARNING_THRESHOLD,
        "int",
        80,
        "quota",
        "Warning threshold",
        "A quota shows a warning from this share of its limit (danger at 100%).",
        minimum=1,
        maximum=100,
        unit="%",
    ),
)


# --- the in-memory invocation counter ---------------------------------------------------------------


@dataclass(slots=True)
class InvocationCounter:
    """Invocations admitted in the current UTC day and month. `admit` is the hot path: a clock read,
    two comparisons and two increments."""

    clock: Callable[[], float] = time.time
    day: int = 0
    month: int = 0
    _next_day: float = 0.0
    _month: tuple[int, int] = (0, 0)
    _day_start: datetime = field(default_factory=lambda: datetime(1970, 1, 1, tzinfo=UTC))

    def __post_init__(self) -> None:
        self._roll(self.clock())

    def _roll(self, now: float) -> None:
        at = datetime.fromtimestamp(now, UTC)
        self._day_start = at.replace(hour=0, minute=0, second=0, microsecond=0)
        self._next_day = (self._day_start + timedelta(days=1)).timestamp()
        self.day = 0
        if (at.year, at.month) != self._month:
            self._month, self.month = (at.year, at.month), 0

    def current(self) -> tuple[int, int]:
        """(today's, this month's) admitted invocations."""
        now = self.clock()
        if now >= self._next_day:
            self._roll(now)
        return self.day, self.month

    @property
    def day_start(self) -> datetime:
        return self._day_start

    @property
    def month_start(self) -> datetime:
        return self._day_start.replace(day=1)

    def admit(self, day_limit: int, month_limit: int) -> None:
        now = self.clock()
        if now >= self._next_day:
            self._roll(now)
        if self.day >= day_limit:
            raise QuotaExceeded(
                f"daily invocation quota reached: {self.day} of {day_limit} invocations today (UTC); "
                "it resets at 00:00 UTC, or an admin raises max_invocations_per_day"
            )
        if self.month >= month_limit:
            raise QuotaExceeded(
                f"monthly invocation quota reached: {self.month} of {month_limit} invocations this month "
                "(UTC); it resets on the 1st, or an admin raises max_invocations_per_month"
            )
        self.day += 1
        self.month += 1

    def seed(self, day_start: datetime, day: int, month: int) -> None:
        """Raise the counts to what the rollups hold (they may lag this node, or include other nodes)."""
        self.current()
        if day_start != self._day_start:  # the day turned while the rollups were read
            return
        self.day = max(self.day, day)
        self.month = max(self.month, month)
