"""Workflow benchmark: 40 trivial Task states in sequence, and a Parallel of 10 one-Task branches, on a
temp platform (SQLite in a temp dir, real sandboxed Python workers), every state run recorded durably.

For each shape: warm up, run it --runs times (sync start: start -> committed end), and print the median,
best and worst total, the functions' own time (handler time from the invocation records), the per-state
overhead (total minus the functions' own time, per state), and the same-run baseline of calling the
function 40 times in a row through the invoker with no workflow around it. The issue's target: the 40-state
run in < 0.8 s (< 20 ms per state); the ratio column is total / 0.8 s.

    .venv/bin/python bench/workflow.py [--runs 10]

Prints a table, then one JSON line of the figures (units in the key names)."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from data.models import Invocation, WorkflowStateRun  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.platform import Platform  # noqa: E402
from engine.principal import SYSTEM  # noqa: E402
from engine.services.function_schemas import FunctionCreate  # noqa: E402

TRIVIAL = "def handler(event, context):\n    return event\n"
SEQUENCE = 40
BRANCHES = 10
TARGET_SEC = 0.8


def sequence() -> dict[str, Any]:
    states = {
        f"S{i:02d}": {"type": "task", "function_id": "trivial", "next": f"S{i + 1:02d}"}
        for i in range(SEQUENCE)
    }
    states[f"S{SEQUENCE - 1:02d}"] = {"type": "task", "function_id": "trivial", "end": True}
    return {"start_at": "S00", "states": states}


def parallel() -> dict[str, Any]:
    branch = {"start_at": "T", "states": {"T": {"type": "task", "function_id": "trivial", "end": True}}}
    return {
        "start_at": "Fan",
        "states": {"Fan": {"type": "parallel", "branches": [branch] * BRANCHES, "end": True}},
    }


async def handler_ms(platform: Platform, execution_id: str) -> float:
    """The functions' own time in one execution (the worker-measured handler durations)."""
    async with platform.db.session() as session:
        ids = select(WorkflowStateRun.invocation_id).where(WorkflowStateRun.execution_id == execution_id)
        total = await session.execute(select(func.sum(Invocation.duration_ms)).where(Invocation.id.in_(ids)))
        return float(total.scalar_one() or 0.0)


async def measure(platform: Platform, name: str, runs: int, states: int) -> dict[str, float]:
    totals: list[float] = []
    own: list[float] = []
    for i in range(runs + 1):
        started = time.perf_counter()
        execution = await platform.workflows.run(SYSTEM, name, {"i": i}, wait_sec=120)
        elapsed = time.perf_counter() - started
        if execution.status != "succeeded":
            raise SystemExit(f"{name}: {execution.status} {execution.error} {execution.cause}")
        if i == 0:
            continue  # warm-up: cold workers, first queries
        await platform.batcher.flush()  # the invocation records are written behind
        totals.append(elapsed)
        own.append(await handler_ms(platform, execution.id) / 1000)
    median = statistics.median(totals)
    own_median = statistics.median(own)
    return {
        "total_median_s": median,
        "total_best_s": min(totals),
        "total_worst_s": max(totals),
        "functions_own_s": own_median,
        "overhead_per_state_ms": (median - own_median) / states * 1000,
    }


async def direct(platform: Platform, runs: int) -> float:
    """Baseline: the same 40 calls through the invoker, one after another, no workflow."""
    totals = []
    for _ in range(runs):
        started = time.perf_counter()
        for i in range(SEQUENCE):
            await platform.invoker.invoke(SYSTEM, "trivial", {"i": i}, source="workflow")
        totals.append(time.perf_counter() - started)
    return statistics.median(totals)


async def bench(runs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="nimbus-bench-wf-") as tmp:
        settings = Settings(data_dir=Path(tmp), admin_password="bench-password-123", keep_alive_sec=600)
        async with Platform(settings) as platform:
            await platform.functions.create(
                SYSTEM, FunctionCreate(name="trivial", runtime="python", code=TRIVIAL)
            )
            await platform.workflows.create(SYSTEM, {"name": "sequence", "definition": sequence()})
            await platform.workflows.create(SYSTEM, {"name": "parallel", "definition": parallel()})
            seq = await measure(platform, "sequence", runs, SEQUENCE)
            par = await measure(platform, "parallel", runs, BRANCHES + 1)
            baseline = await direct(platform, runs)
            transactions = platform.batcher.stats.transactions
    return {
        "sequence40_total_median_s": seq["total_median_s"],
        "sequence40_total_best_s": seq["total_best_s"],
        "sequence40_total_worst_s": seq["total_worst_s"],
        "sequence40_functions_own_s": seq["functions_own_s"],
        "sequence40_overhead_per_state_ms": seq["overhead_per_state_ms"],
        "sequence40_ratio_to_target": seq["total_median_s"] / TARGET_SEC,
        "sequence40_per_state_ms": seq["total_median_s"] / SEQUENCE * 1000,
        "baseline_40_direct_invokes_s": baseline,
        "ratio_sequence40_to_direct": seq["total_median_s"] / baseline,
        "parallel10_total_median_s": par["total_median_s"],
        "parallel10_total_best_s": par["total_best_s"],
        "parallel10_total_worst_s": par["total_worst_s"],
        "parallel10_functions_own_s": par["functions_own_s"],
        "parallel10_overhead_per_state_ms": par["overhead_per_state_ms"],
        "batcher_transactions": transactions,
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    figures = asyncio.run(bench(max(1, args.runs)))
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value:.4f}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    print(json.dumps({k: round(v, 5) if isinstance(v, float) else v for k, v in figures.items()}))


if __name__ == "__main__":
    main()
