"""A function's `min_warm` workers are started when it is saved and again when Nimbus starts."""

from __future__ import annotations

from pathlib import Path

from engine.platform import Platform
from engine.principal import SYSTEM
from engine.services.function_schemas import FunctionCreate, FunctionUpdate
from tests.api.conftest import make_settings

CODE = "def handler(event, context):\n    return 1\n"


def idle_workers(platform: Platform, name: str) -> int:
    return sum(p["idle"] for p in platform.pool.stats().values() if p["name"] == name)


async def test_min_warm_workers_are_started_on_save_and_on_start(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    async with Platform(settings) as platform:
        await platform.functions.create(
            SYSTEM, FunctionCreate(name="warm", runtime="python", code=CODE, min_warm=2)
        )
        await platform.functions.create(SYSTEM, FunctionCreate(name="cold", runtime="python", code=CODE))
        await platform.prewarmer.settled()
        assert idle_workers(platform, "warm") == 2
        assert idle_workers(platform, "cold") == 0

    async with Platform(settings) as platform:  # a restart
        await platform.prewarmer.settled()
        assert idle_workers(platform, "warm") == 2
        outcome = await platform.invoker.invoke(SYSTEM, "warm", {})
        assert outcome.result.ok and not outcome.result.cold


async def test_an_update_warms_the_new_code(tmp_path: Path) -> None:
    async with Platform(make_settings(tmp_path)) as platform:
        await platform.functions.create(
            SYSTEM, FunctionCreate(name="warm", runtime="python", code=CODE, min_warm=1)
        )
        await platform.prewarmer.settled()
        await platform.functions.update(SYSTEM, "warm", FunctionUpdate(code=CODE.replace("1", "2")))
        await platform.prewarmer.settled()
        outcome = await platform.invoker.invoke(SYSTEM, "warm", {})
        assert outcome.result.result == 2 and not outcome.result.cold


async def test_a_function_that_cannot_load_is_not_kept_warm_and_nimbus_keeps_serving(tmp_path: Path) -> None:
    async with Platform(make_settings(tmp_path)) as platform:
        broken = "raise RuntimeError('no')\ndef handler(event, context):\n    return 1\n"
        await platform.functions.create(
            SYSTEM, FunctionCreate(name="broken", runtime="python", code=broken, min_warm=1)
        )
        await platform.prewarmer.settled()
        assert idle_workers(platform, "broken") == 0
        await platform.functions.create(SYSTEM, FunctionCreate(name="fine", runtime="python", code=CODE))
        assert (await platform.invoker.invoke(SYSTEM, "fine", {})).result.ok
