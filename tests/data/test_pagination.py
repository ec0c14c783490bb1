"""Cursor pagination: newest first, page after page, until next_cursor is None; a cursor we did not
make is a 422 about the `cursor` field, never a 500."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from data.db import Database
from data.models import AuditEvent
from data.repos.pagination import clamp_limit, decode_cursor, encode_cursor, paginate
from data.types import new_id, utcnow
from engine.errors import Invalid


async def add_events(db: Database, count: int, **fields: object) -> list[str]:
    """Insert `count` audit events; returns their ids, oldest first."""
    ids = [new_id() for _ in range(count)]
    now = utcnow()
    rows = [{"id": i, "action": "function.create", "created_at": now, **fields} for i in ids]
    async with db.transaction() as session:
        await session.execute(insert(AuditEvent), rows)
    return ids


async def test_pages_walk_every_row_newest_first(db: Database) -> None:
    ids = await add_events(db, 45)
    seen: list[str] = []
    sizes: list[int] = []
    cursor = None

    async with db.session() as session:
        while True:
            page = await paginate(session, select(AuditEvent), AuditEvent.id, cursor=cursor, limit=20)
            seen += [event.id for event in page.items]
            sizes.append(len(page.items))
            if page.next_cursor is None:
                break
            cursor = page.next_cursor

    assert sizes == [20, 20, 5]
    assert seen == list(reversed(ids))


async def test_filters_apply_to_every_page(db: Database) -> None:
    await add_events(db, 5, actor="alice")
    bobs = await add_events(db, 3, actor="bob")
    stmt = select(AuditEvent).where(AuditEvent.actor == "bob")

    async with db.session() as session:
        first = await paginate(session, stmt, AuditEvent.id, limit=2)
        second = await paginate(session, stmt, AuditEvent.id, cursor=first.next_cursor, limit=2)

    assert [e.id for e in first.items + second.items] == list(reversed(bobs))
    assert second.next_cursor is None


async def test_sorting_by_another_column_breaks_ties_by_id(db: Database) -> None:
    ids = await add_events(db, 6)
    later = utcnow() + timedelta(hours=1)
    async with db.transaction() as session:  # two of the oldest events get the newest timestamp
        for event_id in ids[:2]:
            (await session.get(AuditEvent, event_id)).created_at = later  # type: ignore[union-attr]
    pages: list[list[str]] = []
    cursor = None

    async with db.session() as session:
        for _ in range(3):
            page = await paginate(
                session,
                select(AuditEvent),
                AuditEvent.id,
                cursor=cursor,
                limit=2,
                sort_column=AuditEvent.created_at,
            )
            pages.append([e.id for e in page.items])
            cursor = page.next_cursor

    assert pages == [[ids[1], ids[0]], [ids[5], ids[4]], [ids[3], ids[2]]]
    assert cursor is None


def test_limits_are_clamped_between_1_and_100() -> None:
    assert clamp_limit(None) == 20
    assert clamp_limit(0) == 1
    assert clamp_limit(-5) == 1
    assert clamp_limit(1000) == 100


def test_a_cursor_round_trips() -> None:
    assert decode_cursor(encode_cursor("0190-abc")).id == "0190-abc"
    now = utcnow()
    assert decode_cursor(encode_cursor("x", now)).key == now
    assert decode_cursor(encode_cursor("x", 42)).key == 42


@pytest.mark.parametrize(
    "garbage",
    [
        "garbage!",
        "",
        "x" * 600,
        base64.urlsafe_b64encode(b"not json").decode(),
        base64.urlsafe_b64encode(b'{"id": "missing i"}').decode(),
        base64.urlsafe_b64encode(b'{"i": 42}').decode(),
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        base64.urlsafe_b64encode(b'{"i": "x", "k": {"t": "not a date"}}').decode(),
    ],
)
def test_a_cursor_we_did_not_make_is_invalid_input(garbage: str) -> None:
    with pytest.raises(Invalid) as raised:
        decode_cursor(garbage)
    assert raised.value.field == "cursor"
    assert raised.value.message == "invalid cursor"


async def test_paginate_rejects_a_bad_cursor(db: Database) -> None:
    async with db.session() as session:
        with pytest.raises(Invalid):
            await paginate(session, select(AuditEvent), AuditEvent.id, cursor="%%%")
