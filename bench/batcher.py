"""Write-behind batcher throughput: N invocation records submitted fire-and-forget, then flushed.

Prints rows/s for three shapes of the same work on a fresh SQLite file (and PostgreSQL when
NIMBUS_TEST_POSTGRES_URL is set): `Insert` ops (merged into one executemany per batch), callable ops
(one statement each, as the invoker's closures are), and two baselines: one raw Core executemany of
all rows, and the same cut into batch-sized transactions (what the batcher should approach). Then
2000 concurrent `commit()`s: acknowledgements/s and how many transactions they shared.

    .venv/bin/python bench/batcher.py [N]
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from data.batcher import Batcher, Insert
from data.db import Database
from data.migrate import migrate
from data.models import Invocation
from data.types import new_id, utcnow
from engine.config import Settings


def record(i: int) -> dict[str, Any]:
    now = utcnow()
    return {
        "id": new_id(),
        "function_id": "f" * 36,
        "function_name": "hello",
        "source": "api",
        "mode": "sync",
        "status": "success",
        "status_code": 200,
        "input": {"n": i},
        "output": {"hello": "world"},
        "input_size": 8,
        "output_size": 17,
        "cold": False,
        "duration_ms": 1.2,
        "billed_ms": 100,
        "billed_gb_s": 0.0125,
        "trace_id": "t",
        "node": "bench",
        "actor": "bench",
        "created_at": now,
        "started_at": now,
        "ended_at": now,
    }


async def through_batcher(db: Database, n: int, *, callables: bool) -> float:
    settings = Settings(data_dir=Path(tempfile.gettempdir()))
    batcher = Batcher(db, max_rows=settings.batch_max_rows, max_delay_ms=settings.batch_max_delay_ms)
    await batcher.start()
    rows = [record(i) for i in range(n)]
    started = time.perf_counter()
    for row in rows:
        if callables:

            async def write(session: AsyncSession, row: dict[str, Any] = row) -> None:
                await session.execute(insert(Invocation), [row])

            batcher.submit(write)
        else:
            batcher.submit(Insert(Invocation, [row]))
    await batcher.flush()  # the writer drains the burst in batches of batch_max_rows
    elapsed = time.perf_counter() - started
    await batcher.stop()
    async with db.session() as session:
        assert (await session.execute(select(func.count()).select_from(Invocation))).scalar_one() == n
    return n / elapsed


async def group_commit(db: Database, n: int) -> tuple[float, float]:
    """n concurrent `await commit()`s (202s waiting for durability): acknowledgements/s, transactions."""
    settings = Settings(data_dir=Path(tempfile.gettempdir()))
    batcher = Batcher(db, max_rows=settings.batch_max_rows, max_delay_ms=settings.batch_max_delay_ms)
    await batcher.start()
    rows = [record(i) for i in range(n)]
    started = time.perf_counter()
    await asyncio.gather(*(batcher.commit(Insert(Invocation, [row])) for row in rows))
    elapsed = time.perf_counter() - started
    await batcher.stop()
    return n / elapsed, float(batcher.stats.transactions)


async def raw_executemany(db: Database, n: int) -> float:
    rows = [record(i) for i in range(n)]
    started = time.perf_counter()
    async with db.transaction() as session:
        await session.execute(insert(Invocation.__table__), rows)  # type: ignore[attr-defined]
    return n / (time.perf_counter() - started)


async def raw_batches(db: Database, n: int, size: int) -> float:
    """The same executemany, cut into batch-sized transactions: what the batcher should approach."""
    rows = [record(i) for i in range(n)]
    started = time.perf_counter()
    for i in range(0, n, size):
        async with db.transaction() as session:
            await session.execute(insert(Invocation.__table__), rows[i : i + size])  # type: ignore[attr-defined]
    return n / (time.perf_counter() - started)


async def clear(db: Database) -> None:
    async with db.transaction() as session:
        await session.execute(delete(Invocation))


async def bench(url: str, n: int) -> dict[str, float]:
    db = Database(url)
    await migrate(db)
    figures: dict[str, float] = {}
    try:
        await raw_batches(db, n, 500)  # warm-up: grow the file once, so no shape pays for it alone
        for name, run in (
            ("insert_ops_rows_per_s", lambda: through_batcher(db, n, callables=False)),
            ("callable_ops_rows_per_s", lambda: through_batcher(db, n, callables=True)),
            ("raw_executemany_rows_per_s", lambda: raw_executemany(db, n)),
            ("raw_batched_rows_per_s", lambda: raw_batches(db, n, Settings().batch_max_rows)),
        ):
            await clear(db)
            figures[name] = await run()
        await clear(db)
        figures["group_commit_acks_per_s"], figures["group_commit_transactions"] = await group_commit(
            db, 2000
        )
    finally:
        await db.close()
    figures["insert_ops_vs_raw_batched"] = (
        figures["insert_ops_rows_per_s"] / figures["raw_batched_rows_per_s"]
    )
    return figures


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    targets = {"sqlite": None}
    if os.environ.get("NIMBUS_TEST_POSTGRES_URL"):
        targets["postgresql"] = os.environ["NIMBUS_TEST_POSTGRES_URL"]
    results: dict[str, Any] = {"n": n}
    with tempfile.TemporaryDirectory() as tmp:
        for name, url in targets.items():
            if url is None:
                url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
            elif name == "postgresql":
                print("(postgresql: uses the test database's invocations table and clears it)")
            figures = asyncio.run(bench(url, n))
            for key, value in figures.items():
                print(f"{name:10} {key:28} {value:12,.2f}")
            results[name] = {k: round(v, 2) for k, v in figures.items()}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
