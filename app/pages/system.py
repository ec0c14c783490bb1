"""System: what this node is and can do. The node (version, uptime, database), the sandbox actually in
force (its level, namespaces, and every warning: a degraded sandbox is never silent), each runtime and
executor with its toolchain version or the reason it is unavailable, and the warm pools."""

from __future__ import annotations

import asyncio
from typing import Any

from nicegui import ui

from components.frame import PageContext, console_page
from components.stats_card import StatsCard
from engine.runtimes.docker_executor import detect_docker

LEVEL_TONE = {"strong": "positive", "partial": "warning", "degraded": "negative"}
RUNTIME_TITLES = {
    "python": "Python",
    "nodejs": "Node.js",
    "go": "Go",
    "rust": "Rust",
    "wasm": "WebAssembly",
    "docker": "Docker executor",
}


def _uptime(seconds: float) -> str:
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h {minutes}m" if days else f"{hours}h {minutes}m {sec}s"


@console_page("/system", "System")
async def system_page(ctx: PageContext) -> None:
    await asyncio.to_thread(detect_docker)  # the engine probe may take seconds: off the loop, then cached
    info: dict[str, Any] = ctx.platform.system_info()
    with ui.row().classes("w-full gap-4"):
        version = StatsCard("Version", icon="sell", mark="sys-version")
        version.set(str(info["version"]), f"node {info['node']}")
        StatsCard("Uptime", icon="schedule", mark="sys-uptime").set(_uptime(float(info["uptime_sec"])))
        StatsCard("Database", icon="storage", mark="sys-database").set(str(info["database"]), info["os"])
        pools = (info.get("pool") or {}).values()
        idle, busy = sum(p["idle"] for p in pools), sum(p["busy"] for p in pools)
        StatsCard("Warm workers", icon="local_fire_department", mark="sys-warm").set(
            str(idle), f"{busy} busy · {len(pools)} pools"
        )

    iso = info["isolation"]
    with ui.card().classes("w-full").mark("isolation"):
        with ui.row().classes("items-center gap-3"):
            ui.label("Sandbox").classes("text-lg font-semibold")
            ui.badge(iso["level"], color=LEVEL_TONE.get(iso["level"], "grey")).mark("isolation-level")
        facts = [
            ("Namespaces", ", ".join(iso["namespaces"]) or "none"),
            ("Own uid per function", "yes" if iso["uid_drop"] else "no"),
            ("Private root", "yes" if iso["private_root"] else "no"),
            ("rlimits", "yes" if iso["rlimits"] else "no"),
            ("seccomp", "yes" if iso["seccomp"] else "no"),
        ]
        with ui.grid(columns=2).classes("gap-x-6 gap-y-1 text-sm"):
            for label, value in facts:
                ui.label(label).classes("text-gray-500")
                ui.label(value)
        for warning in iso["warnings"]:
            with ui.row().classes("items-center gap-2 text-orange-600").mark("isolation-warning"):
                ui.icon("warning")
                ui.label(warning)

    with ui.card().classes("w-full").mark("runtimes"):
        ui.label("Runtimes and executors").classes("text-lg font-semibold")
        rows = [
            {
                "name": r["name"],
                "title": RUNTIME_TITLES.get(r["name"], r["name"]),
                "status": "available" if r["available"] else "unavailable",
                "version": r["version"] or "–",
                "detail": r["detail"],
            }
            for r in info["runtimes"]
        ]
        columns = [
            {"name": "title", "label": "Runtime", "field": "title", "align": "left"},
            {"name": "status", "label": "Status", "field": "status", "align": "left"},
            {"name": "version", "label": "Version", "field": "version", "align": "left"},
            {"name": "detail", "label": "Where / why not", "field": "detail", "align": "left"},
        ]
        table = ui.table(columns=columns, rows=rows, row_key="name").classes("w-full").mark("runtime-table")
        table.add_slot(
            "body-cell-status",
            """
            <q-td :props="props">
              <q-badge :color="props.value === 'available' ? 'positive' : 'grey'" :label="props.value" />
            </q-td>
            """,
        )
