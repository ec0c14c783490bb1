"""Column types shared by the tables: UTC-aware datetimes and time-ordered ids."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


_last_ms = 0
_seq = 0


def new_id() -> str:
    """A UUIDv7 string (RFC 9562, counter method): time-ordered, so ordering by id is ordering by
    creation, which is what keyset pagination needs. Monotonic within this process."""
    global _last_ms, _seq
    ms = time.time_ns() // 1_000_000
    noise = int.from_bytes(os.urandom(9), "big")  # one call: 8 random bytes, and a byte to start counting at
    if ms <= _last_ms:
        ms, _seq = _last_ms, _seq + 1
        if _seq > 0xFFF:
            ms, _seq = ms + 1, 0
    else:
        _seq = noise >> 64  # leave room to count up within the ms
    _last_ms = ms
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | _seq << 64 | 0b10 << 62 | noise & ((1 << 62) - 1)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def id_floor(at: datetime) -> str:
    """The smallest UUIDv7 string of the millisecond `at`: `id >= id_floor(t)` means "created in or
    after t's millisecond", a primary-key range scan where a timestamp filter would scan the table."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    ms = max(0, int(at.timestamp() * 1000))
    digits = f"{ms:012x}"
    return f"{digits[:8]}-{digits[8:12]}-0000-0000-000000000000"


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC; always returns timezone-aware datetimes (SQLite drops the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def bind_processor(self, dialect: Dialect) -> Any:
        """On SQLite, the text SQLAlchemy's DATETIME stores ("YYYY-MM-DD HH:MM:SS.ffffff"), made in one
        step: the two-step default (this type's conversion, then DATETIME's %-formatting) was a tenth of
        the single writer's time, at ten datetimes per async invocation."""
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is not UTC and value.tzinfo is not None:
                value = value.astimezone(UTC)
            return value.isoformat(" ", "microseconds")[:26]  # without the "+00:00" of an aware one

        return process

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
