"""Query-string parsing shared by the console's download routes (logs, audit)."""

from __future__ import annotations

from datetime import UTC, datetime

from engine.errors import Invalid


def query_moment(text: str, field: str) -> datetime | None:
    """An ISO date and time from a query parameter (UTC when it names no zone); empty is none."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise Invalid(field, f"{field} is not an ISO date and time") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
