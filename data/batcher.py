"""The write-behind batcher: one writer task turns many small writes into one transaction per batch.

Hot records (invocation rows, logs) are `submit()`ted fire-and-forget; durable writes (async-queue
enqueues behind a 202) `await commit()`, which returns once the batch holding them has committed, so
many concurrent requests share one commit (group commit). Callbacks given as `on_commit` run only after
that commit, which is how events reach the bus: the UI never shows a row that rolled back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any

from pydantic_core import PydanticUndefined
from sqlalchemy import Engine, Executable, Table, bindparam, create_engine, event, insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine.url import make_url
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from data.bulk import update_many
from data.db import Database, sqlite_pragmas

log = logging.getLogger("nimbus.batcher")

Write = Callable[[AsyncSession], Awaitable[None]]
"""Arbitrary work: an async function of the batch's session. It may run twice (once in the batch, once
alone if the batch fails), so it must touch nothing but the session."""

Callback = Callable[[], object]


def _table(model: Any) -> Table:
    return model.__table__  # type: ignore[no-any-return]


@cache
def _defaults(model: type) -> tuple[dict[str, Any], tuple[tuple[str, Callable[[], Any]], ...]]:
    """The model's Python-side defaults, static and computed (SQLModel keeps them in pydantic, not in
    the table), so Core inserts of partial rows get the values an ORM insert would."""
    static: dict[str, Any] = {}
    factories: list[tuple[str, Callable[[], Any]]] = []
    for name, info in model.model_fields.items():  # type: ignore[attr-defined]
        if info.default_factory is not None:
            factories.append((name, info.default_factory))
        elif info.default is not PydanticUndefined:
            static[name] = info.default
    return static, tuple(factories)


def _complete_rows(model: type, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    static, factories = _defaults(model)
    completed = []
    for row in rows:
        full = {**static, **row}
        for name, factory in factories:
            if name not in row:
                full[name] = factory()
        completed.append(full)
    return completed


@dataclass(frozen=True, slots=True)
class Insert:
    """Insert rows (dicts of column values; missing columns get the model's defaults)."""

    model: type
    rows: list[dict[str, Any]]

    def __post_init__(self) -> None:
        object.__setattr__(self, "rows", _complete_rows(self.model, self.rows))

    async def __call__(self, session: AsyncSession) -> None:
        if self.rows:
            await session.execute(insert(_table(self.model)), self.rows)


@dataclass(frozen=True, slots=True)
class Update:
    """Set `values` on the row whose primary key is `id`."""

    model: type
    id: Any
    values: dict[str, Any]

    async def __call__(self, session: AsyncSession) -> None:
        await session.execute(_update_statement(_table(self.model), tuple(self.values)), [self.params()])

    def params(self) -> dict[str, Any]:
        return {"_pk": self.id, **{f"_v_{k}": v for k, v in self.values.items()}}


@lru_cache(maxsize=256)
def _update_statement(table: Table, columns: tuple[str, ...]) -> Executable:
    """UPDATE ... SET columns WHERE pk = :_pk, with bound parameters so several Updates of the same shape
    run as one executemany."""
    (pk,) = table.primary_key.columns
    return update(table).where(pk == bindparam("_pk")).values({c: bindparam(f"_v_{c}") for c in columns})


@dataclass(frozen=True, slots=True)
class Upsert:
    """Insert rows, or update the existing row with the same `key` columns (default: the primary key).
    `update` names the columns overwritten on conflict (default: the columns the rows give, but the key;
    the model's defaults fill the rest only for rows that are inserted)."""

    model: type
    rows: list[dict[str, Any]]
    key: tuple[str, ...] = ()
    update: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        table = _table(self.model)
        if not self.key:
            object.__setattr__(self, "key", tuple(c.name for c in table.primary_key.columns))
        if not self.update and self.rows:
            object.__setattr__(self, "update", tuple(c for c in self.rows[0] if c not in self.key))
        object.__setattr__(self, "rows", _complete_rows(self.model, self.rows))

    async def __call__(self, session: AsyncSession) -> None:
        if not self.rows:
            return
        table = _table(self.model)
        key, columns = self.key, self.update
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(table)
        if columns:
            stmt = stmt.on_conflict_do_update(index_elements=key, set_={c: stmt.excluded[c] for c in columns})
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=key)
        await session.execute(stmt, self.rows)


Op = Insert | Update | Upsert | Write
Ops = Op | Sequence[Op]  # several ops submitted together commit together
Callbacks = Callback | Sequence[Callback] | None


def _row_count(op: Op) -> int:
    return len(op.rows) if isinstance(op, Insert | Upsert) else 1


@dataclass(eq=False, slots=True)
class _Item:
    """One submission: its ops commit together (or not at all), then its callbacks run."""

    ops: tuple[Op, ...]
    callbacks: tuple[Callback, ...]
    rows: int
    enqueued_at: float
    future: asyncio.Future[None] | None = None
    urgent: bool = False  # a flush barrier: write without waiting for the delay


@dataclass(slots=True)
class BatcherStats:
    transactions: int = 0  # committed batch transactions (including one-by-one retries)
    batches: int = 0
    ops: int = 0
    rows: int = 0
    failed_batches: int = 0
    failed_ops: int = 0


@dataclass(slots=True)
class _State:
    pending: list[_Item] = field(default_factory=list)
    pending_rows: int = 0
    urgent: int = 0


class _SyncSession:
    """The one method ops use of AsyncSession (`execute`), over a synchronous Session. On SQLite the
    writer thread owns its connection outright, so a statement runs right there: no hop to
    aiosqlite's thread and back, no greenlet switch per statement (measured: 0.6 ms of CPU per async
    invocation went to that machinery, more than the main loop spent on the invocation itself)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        return self._session.execute(*args, **kwargs)

    def exec_driver_sql(self, sql: str, params: tuple[Any, ...]) -> Any:
        return self._session.connection().exec_driver_sql(sql, params)

    def get_bind(self) -> Any:
        return self._session.get_bind()


class _WriterThread:
    """A thread with its own event loop and database connection that runs the batch transactions.

    Every statement through aiosqlite is several hand-offs between its thread and the calling loop;
    on a loop busy with hundreds of invocations each hand-off waits its turn, so a ten-statement batch
    took ~25 ms. On this quiet loop it takes a few; the busy loop waits for one hand-off per batch.
    On SQLite the thread writes through the synchronous driver (see _SyncSession); on PostgreSQL
    through its own asyncpg engine."""

    def __init__(self, url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="nimbus-db-writer", daemon=True)
        self._thread.start()
        self.db: Database | None = None
        self._sync: Engine | None = None
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            # One connection, used only on this thread (the pool hands it back and forth in place).
            self._sync = create_engine(
                parsed.set(drivername="sqlite+pysqlite"),
                connect_args={"timeout": 30, "check_same_thread": False},
                pool_size=1,
                max_overflow=0,
            )
            event.listen(self._sync, "connect", sqlite_pragmas)
            # Many-row INSERTs as multi-row statements, not executemany (see data/bulk.py for why).
            self._sync.dialect.use_insertmanyvalues_wo_returning = True
        else:
            self.db = Database(url)

    @property
    def engine(self) -> Engine:
        """The synchronous face of the engine this thread writes with (for engine events)."""
        return self._sync if self._sync is not None else self.db.engine.sync_engine  # type: ignore[union-attr]

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        if self.db is not None:
            async with self.db.transaction() as session:
                yield session
            return
        with Session(self._sync, expire_on_commit=False) as session, session.begin():
            yield _SyncSession(session)

    async def close(self) -> None:
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._dispose(), self.loop))
        self.loop.call_soon_threadsafe(self.loop.stop)
        await asyncio.to_thread(self._thread.join, 5)
        self.loop.close()

    async def _dispose(self) -> None:
        if self.db is not None:
            await self.db.close()
        if self._sync is not None:
            self._sync.dispose()


class Batcher:
    def __init__(
        self, db: Database, *, max_rows: int = 500, max_delay_ms: float = 5.0, writer_thread: bool = True
    ) -> None:
        self._db = db
        self._use_thread = writer_thread
        self._writer: _WriterThread | None = None
        self._max_rows = max(1, max_rows)
        self._max_delay = max(0.0, max_delay_ms / 1000)
        self._state = _State()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.stats = BatcherStats()

    # --- public API ---------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._closed = False
            if self._use_thread and self._writer is None:
                self._writer = _WriterThread(self._db.url)
            self._task = asyncio.create_task(self._run(), name="nimbus-batcher")

    def submit(self, op: Ops, *, on_commit: Callbacks = None) -> None:
        """Queue `op` (or several ops that commit together) to be written soon; do not wait."""
        self._enqueue(op, on_commit, future=None)

    async def commit(self, op: Ops, *, on_commit: Callbacks = None) -> None:
        """Queue `op` and return once the batch holding it has committed; raise if it failed."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._enqueue(op, on_commit, future=future)
        await future

    async def flush(self) -> None:
        """Return once everything submitted before this call has been written (or has failed)."""
        if self._task is None:
            raise RuntimeError("the batcher is not running")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._push(_Item((), (), 0, self._now(), future, urgent=True))
        await future

    async def stop(self) -> None:
        """Write everything pending, then stop the writer task."""
        if self._task is None:
            return
        await self.flush()
        self._closed = True
        self._wake.set()
        task, self._task = self._task, None
        await task
        if self._writer is not None:
            writer, self._writer = self._writer, None
            await writer.close()

    @property
    def write_engine(self) -> Engine:
        """The (synchronous face of the) engine the batch transactions run on, for engine events."""
        return self._writer.engine if self._writer is not None else self._db.engine.sync_engine

    @property
    def pending(self) -> int:
        """Rows waiting to be written."""
        return self._state.pending_rows

    # --- queueing -----------------------------------------------------------------------------------

    def _enqueue(self, op: Ops, on_commit: Callbacks, future: asyncio.Future[None] | None) -> None:
        if self._closed:
            raise RuntimeError("the batcher is stopped")
        ops: tuple[Op, ...] = tuple(op) if isinstance(op, list | tuple) else (op,)  # type: ignore[arg-type]
        if on_commit is None:
            callbacks: tuple[Callback, ...] = ()
        elif isinstance(on_commit, list | tuple):
            callbacks = tuple(on_commit)
        else:
            callbacks = (on_commit,)  # type: ignore[assignment]
        self._push(_Item(ops, callbacks, sum(_row_count(o) for o in ops), self._now(), future))

    def _push(self, item: _Item) -> None:
        state = self._state
        was_empty = not state.pending
        state.pending.append(item)
        state.pending_rows += item.rows
        state.urgent += item.urgent
        # Wake the writer only when something changes its plan, not on every row.
        if was_empty or item.urgent or state.pending_rows >= self._max_rows:
            self._wake.set()

    def _take(self) -> list[_Item]:
        """The next batch: whole items, in order, up to max_rows rows (a bigger item goes alone)."""
        state = self._state
        count, rows = 0, 0
        for item in state.pending:
            if count and rows + item.rows > self._max_rows:
                break
            count, rows = count + 1, rows + item.rows
        batch, state.pending = state.pending[:count], state.pending[count:]
        state.pending_rows -= rows
        state.urgent -= sum(item.urgent for item in batch)
        return batch

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    # --- the writer ---------------------------------------------------------------------------------

    async def _run(self) -> None:
        state = self._state
        while True:
            if not state.pending:
                if self._closed:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            left = state.pending[0].enqueued_at + self._max_delay - self._now()
            if state.pending_rows < self._max_rows and not state.urgent and left > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), left)
                continue
            batch = self._take()
            try:
                await self._write(batch)
            except Exception as exc:  # never let the writer die: fail this batch's waiters instead
                log.exception("the batcher failed to write a batch")
                for item in batch:
                    _settle(item, exc)

    async def _write(self, batch: list[_Item]) -> None:
        work = [item for item in batch if item.ops]  # flush barriers have nothing to write
        failures: dict[_Item, BaseException] = {}
        if work:
            self.stats.batches += 1
            if self._writer is not None:
                outcome = asyncio.run_coroutine_threadsafe(self._store(work), self._writer.loop)
                committed, failures = await asyncio.wrap_future(outcome)
            else:
                committed, failures = await self._store(work)
            for group in committed:
                self._committed(group)
        for item in batch:
            exc = failures.get(item)
            if exc is not None:
                self._failed(item, exc)
            _settle(item, exc)

    async def _store(self, work: list[_Item]) -> tuple[list[list[_Item]], dict[_Item, BaseException]]:
        """Write `work` in one transaction (or, when that fails, item by item). Runs on the writer
        thread's loop when there is one; returns the committed groups and the failures."""
        transaction = self._writer.transaction if self._writer is not None else self._db.transaction
        try:
            async with transaction() as session:
                for op in _plan(work):
                    await op(session)
        except Exception as exc:
            self.stats.failed_batches += 1
            if len(work) == 1:
                return [], {work[0]: exc}
            log.warning("a batch of %d writes failed (%s); retrying them one by one", len(work), exc)
            committed: list[list[_Item]] = []
            failures: dict[_Item, BaseException] = {}
            for item in work:
                try:
                    async with transaction() as session:
                        for op in item.ops:
                            await op(session)
                except Exception as item_exc:
                    failures[item] = item_exc
                else:
                    committed.append([item])
            return committed, failures
        return [work], {}

    def _committed(self, items: list[_Item]) -> None:
        self.stats.transactions += 1
        self.stats.ops += sum(len(item.ops) for item in items)
        self.stats.rows += sum(item.rows for item in items)
        for item in items:
            for callback in item.callbacks:
                try:
                    callback()
                except Exception:
                    log.exception("an after-commit callback failed")

    def _failed(self, item: _Item, exc: BaseException) -> None:
        self.stats.failed_ops += len(item.ops)
        if item.future is None:  # nobody is waiting to hear about it: this is the only trace
            log.error("a write was lost: %s", exc, exc_info=exc)


def _settle(item: _Item, exc: BaseException | None) -> None:
    if item.future is None or item.future.done():
        return
    if exc is None:
        item.future.set_result(None)
    else:
        item.future.set_exception(exc)


def _plan(items: list[_Item]) -> list[Op]:
    """The batch's ops in submission order, except that runs are merged into executemany statements:
    each run of consecutive Inserts becomes one statement per table (in foreign-key order; inserts into
    different tables commute and rows of one table keep their order), and each run of consecutive
    Updates of the same table and columns becomes one statement. One statement for 500 invocation rows
    instead of 500 matters: every statement costs several thread round trips through aiosqlite."""
    plan: list[Op] = []
    inserts: dict[Table, list[dict[str, Any]]] = {}
    updates: list[Update] = []

    def close_inserts() -> None:
        if inserts:
            order = {t: i for i, t in enumerate(next(iter(inserts)).metadata.sorted_tables)}
            for table in sorted(inserts, key=lambda t: order.get(t, len(order))):
                plan.append(_executemany(insert(table), inserts[table]))
            inserts.clear()

    def close_updates() -> None:
        if updates:
            plan.append(_update_many(_table(updates[0].model), list(updates)))
            updates.clear()

    for item in items:
        for op in item.ops:
            if isinstance(op, Insert):
                close_updates()
                inserts.setdefault(_table(op.model), []).extend(op.rows)
            elif isinstance(op, Update):
                close_inserts()
                if updates and (updates[0].model, tuple(updates[0].values)) != (op.model, tuple(op.values)):
                    close_updates()
                updates.append(op)
            else:
                close_inserts()
                close_updates()
                plan.append(op)
    close_inserts()
    close_updates()
    return plan


def _update_many(table: Table, updates: list[Update]) -> Op:
    (pk,) = table.primary_key.columns
    rows = [{pk.name: u.id, **u.values} for u in updates]

    async def execute(session: AsyncSession) -> None:
        await update_many(session, table, pk.name, rows)

    return execute


def _executemany(statement: Executable, params: list[dict[str, Any]]) -> Op:
    async def execute(session: AsyncSession) -> None:
        await session.execute(statement, params)

    return execute
