"""The confirmation dialog outlives the container it was asked from: a list that re-renders while the
question is open (a live update, a reload after the previous action) must not take the question away."""

from __future__ import annotations

import asyncio

from nicegui import ui
from nicegui.testing.user import User


async def test_a_confirm_survives_its_list_re_rendering_and_still_answers(console: User) -> None:
    answers: list[bool] = []
    rows: list[ui.column] = []

    @ui.page("/confirm-probe")
    def probe() -> None:
        from components.confirm import confirm

        async def ask() -> None:
            answers.append(await confirm("Promote it to prod?", action="Promote", typed="prod"))

        with ui.column() as row:
            ui.button("promote", on_click=ask).mark("ask")
        rows.append(row)

    await console.open("/confirm-probe")
    console.find(marker="ask").click()
    await console.should_see(marker="confirm-typed")
    rows[0].clear()  # the list re-renders under the open dialog
    await console.should_see(marker="confirm-typed")
    console.find(marker="confirm-typed").type("prod")
    console.find(marker="confirm-ok").click()
    for _ in range(50):
        if answers:
            break
        await asyncio.sleep(0.05)
    assert answers == [True]
