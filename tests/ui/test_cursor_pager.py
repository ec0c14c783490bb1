"""The cursor stack shared by the paged lists: going older and newer, back to the first page, and a failed
load leaving the user on the page they were on."""

from __future__ import annotations

from components.cursor_pager import CursorPager


class Pages:
    """A list of three pages (cursors None, "p2", "p3") whose load can be made to fail."""

    def __init__(self) -> None:
        self.failing = False
        self.loaded: list[str | None] = []
        self.pager = CursorPager(self.load)

    async def load(self) -> str | None:
        if self.failing:
            return "the list could not load"
        self.loaded.append(self.pager.current)
        self.pager.next = {None: "p2", "p2": "p3"}.get(self.pager.current)
        return None


async def test_older_and_newer_walk_the_pages() -> None:
    pages = Pages()
    await pages.pager.restart()
    await pages.pager.older()
    await pages.pager.older()
    assert pages.pager.current == "p3" and pages.pager.page_number == 3 and pages.pager.next is None
    await pages.pager.older()  # the last page: nothing older
    await pages.pager.newer()
    assert pages.pager.current == "p2" and pages.pager.page_number == 2
    assert pages.loaded == [None, "p2", "p3", "p2"]


async def test_a_failed_move_stays_on_the_page_shown() -> None:
    pages = Pages()
    await pages.pager.restart()
    await pages.pager.older()
    pages.failing = True
    await pages.pager.older()
    assert pages.pager.cursors == [None, "p2"]
    await pages.pager.newer()
    assert pages.pager.cursors == [None, "p2"]


async def test_restart_goes_to_the_first_page_or_reports_why_not() -> None:
    pages = Pages()
    await pages.pager.restart()
    await pages.pager.older()
    pages.failing = True
    assert await pages.pager.restart() == "the list could not load"
    assert pages.pager.cursors == [None, "p2"] and not pages.pager.on_first_page
    pages.failing = False
    assert await pages.pager.restart() is None
    assert pages.pager.on_first_page and pages.pager.current is None


async def test_a_newer_page_on_the_first_one_does_nothing() -> None:
    pages = Pages()
    await pages.pager.newer()
    pages.pager.reset()
    assert pages.loaded == [] and pages.pager.cursors == [None]
