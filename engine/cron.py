"""Cron expressions: parse and validate (with the reason when invalid), and compute run times.

Accepted: the standard five fields `minute hour day-of-month month day-of-week`, each `*`, a number or
name, a range `a-b`, a step `*/n` or `a-b/n` or `a/n`, or a comma list of those; the aliases @yearly
@annually @monthly @weekly @daily @midnight @hourly; and, for sub-minute schedules (and fast tests), an
optional leading seconds field (six fields, `second minute hour dom month dow`, the original Nimbus's
format). Day-of-week is crontab's: 0 or 7 is Sunday, names sun..sat. As in Vixie cron, when both day
fields are restricted (neither starts with `*`) a day matches if either does.

The expression becomes an APScheduler 3 trigger; APScheduler's own day-of-week numbering (0 = Monday)
never leaks out, because every field is expanded here and handed over as explicit values."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

from engine.errors import Invalid

ALIASES: dict[str, str] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MAX_EXPRESSION_CHARS = 128
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # crontab numbering: sun = 0 (and 7)
_APS_WEEKDAYS = {0: "sun", 1: "mon", 2: "tue", 3: "wed", 4: "thu", 5: "fri", 6: "sat"}
_DAYS_IN_MONTH = {m: 29 if m == 2 else calendar.monthrange(2001, m)[1] for m in range(1, 13)}


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # names for low, low+1, ... (months from 1, weekdays from 0)


_SECOND = _Field("second", 0, 59)
_MINUTE = _Field("minute", 0, 59)
_HOUR = _Field("hour", 0, 23)
_DAY = _Field("day-of-month", 1, 31)
_MONTH = _Field("month", 1, 12, _MONTHS)
_WEEKDAY = _Field("day-of-week", 0, 7, _WEEKDAYS)


@dataclass(frozen=True, slots=True)
class Cron:
    """A valid expression in a timezone: its trigger and the run times it yields."""

    expression: str  # as given (an alias stays an alias)
    timezone: str
    trigger: BaseTrigger
    has_seconds: bool

    @property
    def zone(self) -> tzinfo:
        return ZoneInfo(self.timezone)

    def next_after(self, moment: datetime) -> datetime | None:
        """The first run time strictly after `moment` (aware, in the schedule's timezone)."""
        return self.trigger.get_next_fire_time(None, moment + timedelta(microseconds=1))

    def next_times(self, count: int = 5, after: datetime | None = None) -> list[datetime]:
        """The next `count` run times after `after` (default: now)."""
        moment = after or datetime.now(UTC)
        times: list[datetime] = []
        while len(times) < count:
            nxt = self.next_after(moment)
            if nxt is None:
                break
            times.append(nxt)
            moment = nxt
        return times

    def ticks_between(self, start: datetime, end: datetime, cap: int = 100) -> tuple[int, datetime | None]:
        """(how many run times fall in (start, end], the last of them); counting stops at `cap`, and the
        last one is then found by stepping back from `end`."""
        count, last = 0, None
        moment = start
        while count < cap:
            nxt = self.next_after(moment)
            if nxt is None or nxt > end:
                return count, last
            count, last, moment = count + 1, nxt, nxt
        return count, self.last_at_or_before(end, after=last)

    def last_at_or_before(self, end: datetime, *, after: datetime | None) -> datetime | None:
        """The last run time at or before `end` that is after `after` (None when there is none)."""
        span = timedelta(minutes=1)
        while True:
            probe = end - span
            if after is not None and probe < after:
                probe = after
            last = None
            moment = probe
            while (nxt := self.next_after(moment)) is not None and nxt <= end:
                last, moment = nxt, nxt
            if last is not None or probe == after or span > timedelta(days=3660):
                return last
            span *= 4


def parse(expression: str, timezone: str = "UTC") -> Cron:
    """A validated expression, or `Invalid` naming the field ("cron" or "timezone") and the reason."""
    zone = parse_timezone(timezone)
    text = " ".join((expression or "").split())
    if not text:
        raise Invalid("cron", "the cron expression is empty")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise Invalid("cron", f"the cron expression is longer than {MAX_EXPRESSION_CHARS} characters")
    body = text
    if text.startswith("@"):
        alias = ALIASES.get(text.lower())
        if alias is None:
            raise Invalid("cron", f"unknown alias {text!r}: use one of {', '.join(ALIASES)}")
        body = alias
    parts = body.split(" ")
    if len(parts) not in (5, 6):
        raise Invalid(
            "cron",
            f"a cron expression has 5 fields (minute hour day-of-month month day-of-week), or 6 with "
            f"a leading seconds field; this one has {len(parts)}",
        )
    has_seconds = len(parts) == 6
    second_text = parts[0] if has_seconds else "0"
    minute_text, hour_text, day_text, month_text, weekday_text = parts[-5:]
    second = _expand(second_text, _SECOND)
    minute = _expand(minute_text, _MINUTE)
    hour = _expand(hour_text, _HOUR)
    days = _expand(day_text, _DAY)
    months = _expand(month_text, _MONTH)
    weekdays = {0 if d == 7 else d for d in _expand(weekday_text, _WEEKDAY)}
    day_restricted = not day_text.startswith("*")
    weekday_restricted = not weekday_text.startswith("*")
    possible_day = any(d <= _DAYS_IN_MONTH[m] for m in months for d in days)

    common = {
        "second": _join(second),
        "minute": _join(minute),
        "hour": _join(hour),
        "month": _join(months),
        "timezone": zone,
    }
    by_day = CronTrigger(day=_join(days), **common)  # type: ignore[arg-type]
    by_weekday = CronTrigger(day_of_week=_weekdays(weekdays), **common)  # type: ignore[arg-type]
    trigger: BaseTrigger
    if day_restricted and weekday_restricted:  # crontab: either day field may match
        trigger = OrTrigger([by_day, by_weekday]) if possible_day else by_weekday
    elif weekday_restricted:
        trigger = by_weekday
    else:
        if not possible_day:
            raise Invalid("cron", "the expression never matches a date (no such day in those months)")
        trigger = by_day
    return Cron(expression=text, timezone=timezone, trigger=trigger, has_seconds=has_seconds)


def parse_timezone(name: str) -> tzinfo:
    if not name or not name.strip():
        raise Invalid("timezone", "the timezone is empty: use an IANA name such as UTC or Europe/Berlin")
    if len(name) > 64 or name.startswith(("/", ".")) or ".." in name:
        raise Invalid("timezone", f"unknown timezone {name[:64]!r}: use an IANA name such as Europe/Berlin")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise Invalid(
            "timezone", f"unknown timezone {name!r}: use an IANA name such as UTC or Europe/Berlin"
        ) from None


def _expand(text: str, field: _Field) -> set[int]:
    """The values a field's text allows, or Invalid saying what is wrong with it."""
    if not text:
        raise Invalid("cron", f"the {field.name} field is empty")
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise Invalid("cron", f"the {field.name} field has an empty list item: {text!r}")
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise Invalid(
                    "cron", f"the {field.name} field's step {step_text!r} must be a positive number"
                )
            step = int(step_text)
        if base == "*":
            low, high = field.low, field.high
            if field is _WEEKDAY:
                high = 6  # 7 is Sunday again
        elif "-" in base:
            start, _, end = base.partition("-")
            low, high = _value(start, field), _value(end, field)
            if low > high:
                raise Invalid(
                    "cron", f"the {field.name} field's range {base!r} runs backwards ({low} > {high})"
                )
        else:
            low = _value(base, field)
            high = field.high if slash else low  # `a/n`: from a to the end, every n
        values.update(range(low, high + 1, step))
    return values


def _value(text: str, field: _Field) -> int:
    lowered = text.lower()
    if field.names and lowered in field.names:
        return field.names.index(lowered) + (1 if field is _MONTH else 0)
    if not text.isdigit():
        hint = f" or a name ({', '.join(field.names)})" if field.names else ""
        raise Invalid("cron", f"the {field.name} field's {text!r} is not a number{hint}")
    value = int(text)
    if not field.low <= value <= field.high:
        raise Invalid(
            "cron", f"the {field.name} field's value {value} is out of range ({field.low}-{field.high})"
        )
    return value


def _join(values: set[int]) -> str:
    return ",".join(str(v) for v in sorted(values))


def _weekdays(values: set[int]) -> str:
    return ",".join(_APS_WEEKDAYS[v] for v in sorted(values))
