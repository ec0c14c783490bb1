"""The workflow editor in a real Chromium: build a 3-state workflow on the canvas (states added from the
palette, connected with the canvas's own drag gesture, the Task's function picked in the side panel),
save it, run it, and watch the states turn green live on the execution page; and the graph and JSON tabs
staying in sync both ways. The canvas is Cytoscape.js: its instance hangs on the element
(`document.querySelector('.nimbus-dag').cy`), which is how the test reads node positions and colours."""

from __future__ import annotations

import json
import time
from typing import Any

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement

from tests.browser.chrome import Page
from tests.server import Server

SLOW_ECHO = "import time\n\ndef handler(event, context):\n    time.sleep(3)\n    return event\n"
GREEN = "rgb(187,247,208)"  # the succeeded fill of dag_canvas.js

# Records, in the browser, every status each node of the execution graph shows, in order.
WATCH_STATUSES = """
const el = document.querySelector('.nimbus-dag');
window.__seen = {};
const note = (n) => {
  const list = window.__seen[n.id()] = window.__seen[n.id()] || [];
  const s = n.data('status') || 'none';
  if (list[list.length - 1] !== s) list.push(s);
};
el.cy.nodes().forEach(note);
el.cy.on('data', 'node', (e) => note(e.target));
window.__marker = 'same page';
"""


def cy(page: Page, script: str) -> Any:
    """Run `script` with `cy` bound to the first canvas on the page."""
    return page.driver.execute_script(
        "const el = document.querySelector('.nimbus-dag'); if (!el || !el.cy) return null;"
        f"const cy = el.cy; {script}"
    )


def canvas(page: Page) -> WebElement:
    return page.find_css(".nimbus-dag")


def node_ids(page: Page) -> list[str]:
    return cy(page, "return cy.nodes().map((n) => n.id());") or []


def at(page: Page, name: str) -> tuple[float, float]:
    """The node's centre as an offset from the canvas element's centre (what ActionChains takes)."""
    p = cy(page, f"const p = cy.getElementById({json.dumps(name)}).renderedPosition(); return [p.x, p.y];")
    box = canvas(page).rect
    return p[0] - box["width"] / 2, p[1] - box["height"] / 2


def drag_to_connect(page: Page, source: str, target: str) -> None:
    """Hover the source state, press its connect handle and drop it on the target state."""
    element = canvas(page)
    page.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    time.sleep(0.3)  # let the scroll settle: Cytoscape maps the pointer with the canvas's on-screen box
    ActionChains(page.driver).move_to_element_with_offset(element, *at(page, source)).pause(0.3).perform()
    handle = page.find_css(".nimbus-dag-handle")
    tx, ty = at(page, target)
    (
        ActionChains(page.driver)
        .move_to_element(handle)
        .click_and_hold()
        .pause(0.2)
        .move_to_element_with_offset(element, tx, ty - 15)
        .pause(0.3)
        .move_to_element_with_offset(element, tx, ty)
        .pause(0.3)
        .release()
        .perform()
    )


# HTML5 drag and drop from a palette item onto the canvas. WebDriver cannot drive native HTML5 drags,
# so the same events a browser sends (dragstart on the item, dragover and drop on the canvas, one shared
# DataTransfer) are dispatched; the handlers under test are ours: the item's dragstart fills the
# DataTransfer, the canvas's drop reads it and places the state where it was dropped.
DROP_FROM_PALETTE = """
const [item, target, x, y] = arguments;
const source = item.closest('[draggable="true"]');
const data = new DataTransfer();
source.dispatchEvent(new DragEvent('dragstart', {bubbles: true, dataTransfer: data}));
const box = target.getBoundingClientRect();
const at = {clientX: box.left + x, clientY: box.top + y, bubbles: true, cancelable: true, dataTransfer: data};
target.dispatchEvent(new DragEvent('dragover', at));
target.dispatchEvent(new DragEvent('drop', at));
source.dispatchEvent(new DragEvent('dragend', {bubbles: true, dataTransfer: data}));
"""


def drop_from_palette(page: Page, hint: str, x: float, y: float) -> None:
    """Drop the palette item showing `hint` at (x, y) pixels from the canvas's top-left corner."""
    page.driver.execute_script(DROP_FROM_PALETTE, page.find_text(hint), canvas(page), x, y)


def edges(page: Page) -> set[tuple[str, str]]:
    pairs = cy(page, "return cy.edges().map((e) => [e.source().id(), e.target().id()]);") or []
    return {(a, b) for a, b in pairs}


def click_node(page: Page, name: str) -> None:
    page.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", canvas(page))
    time.sleep(0.3)
    ActionChains(page.driver).move_to_element_with_offset(canvas(page), *at(page, name)).click().perform()


def click_tab(page: Page, label: str) -> None:
    query = (
        f"//div[contains(@class, 'q-tab ')][.//div[contains(@class, 'q-tab__label') and text()='{label}']]"
    )
    page.wait(lambda: _click_first(page, query), 10, f"the {label} tab")


def _click_first(page: Page, query: str) -> bool:
    found = [e for e in page.driver.find_elements(By.XPATH, query) if e.is_displayed()]
    if found:
        page.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", found[0])
        found[0].click()
    return bool(found)


def new_workflow(page: Page, name: str) -> None:
    page.open("/workflows")
    page.click_button("New workflow")
    page.input("Name").send_keys(name)
    page.click_button("Create workflow")
    page.wait(lambda: "/workflows/" in page.driver.current_url, 15, "the workflow page")
    page.wait(lambda: node_ids(page) == ["Start"], 15, "the canvas with the blank workflow's state")


def test_build_a_three_state_workflow_save_run_and_watch_it_turn_green(
    logged_in: Page, server: Server
) -> None:
    page = logged_in
    with server.api() as api:
        api.post(
            "/api/v1/functions", json={"name": "wf-browser-slow", "runtime": "python", "code": SLOW_ECHO}
        ).raise_for_status()
    new_workflow(page, "browser-three")

    # Add two states from the palette (the blank workflow starts with one Pass state, "Start").
    page.click_text("run a function")
    page.click_text("end successfully")
    page.wait(lambda: node_ids(page) == ["Start", "Task", "Succeed"], 10, "three states on the canvas")

    # Connect them with the canvas's drag gesture.
    drag_to_connect(page, "Start", "Task")
    page.wait(lambda: edges(page) == {("Start", "Task")}, 10, "Start -> Task")
    drag_to_connect(page, "Task", "Succeed")
    page.wait(lambda: edges(page) == {("Start", "Task"), ("Task", "Succeed")}, 10, "Task -> Succeed")

    # Pick the Task's function in the side panel.
    click_node(page, "Task")
    page.find_text("State: Task")
    picker = page.input("Function")
    picker.click()
    picker.send_keys("wf-browser-slow")
    page.click_text("wf-browser-slow")
    page.wait(
        lambda: "wf-browser-slow" in (cy(page, "return cy.getElementById('Task').data('label');") or "")
    )

    page.click_button("Save")
    page.find_text("Saved version 2")
    with server.api() as api:
        saved = api.get("/api/v1/workflows/browser-three").json()
    states = saved["definition"]["states"]
    assert saved["definition"]["start_at"] == "Start"
    assert states["Start"]["next"] == "Task" and states["Task"]["next"] == "Succeed"
    assert states["Task"]["function_id"] == "wf-browser-slow"

    # Run it (async: the console opens the execution) and watch the graph turn green without a reload.
    click_tab(page, "Start")
    page.find_css("[aria-label='Execution name (optional)']")
    page.click_button("Start")
    page.wait(lambda: "/executions/" in page.driver.current_url, 15, "the execution page")
    page.wait(lambda: node_ids(page) == ["Start", "Task", "Succeed"], 15, "the execution graph")
    page.driver.execute_script(WATCH_STATUSES)
    page.wait(
        lambda: cy(page, "return cy.nodes().every((n) => n.data('status') === 'succeeded');"),
        60,
        "every state succeeded",
    )
    fills = cy(page, "return cy.nodes().map((n) => n.style('background-color').replace(/ /g, ''));")
    assert fills == [GREEN, GREEN, GREEN]
    seen = page.driver.execute_script("return window.__seen;")
    assert seen["Task"][-1] == "succeeded" and len(seen["Task"]) >= 2, seen  # it changed while we watched
    assert seen["Succeed"][-1] == "succeeded" and seen["Succeed"][0] != "succeeded", seen
    assert page.driver.execute_script("return window.__marker;") == "same page"  # pushed, not reloaded
    page.find_text("succeeded")


def test_a_graph_edit_shows_in_the_json_tab_and_a_json_edit_on_the_canvas(logged_in: Page) -> None:
    page = logged_in
    new_workflow(page, "browser-sync")

    drop_from_palette(page, "pause for a time", 120, 420)
    page.wait(lambda: node_ids(page) == ["Start", "Wait"], 10, "the dropped Wait state")
    rendered = cy(page, "const p = cy.getElementById('Wait').renderedPosition(); return [p.x, p.y];")
    assert abs(rendered[0] - 120) < 3 and abs(rendered[1] - 420) < 3, rendered  # where it was dropped
    drag_to_connect(page, "Start", "Wait")
    page.wait(lambda: edges(page) == {("Start", "Wait")}, 10, "Start -> Wait")

    # Move the Wait state by dragging it: its new position is kept in the definition's layout.
    before = cy(page, "const p = cy.getElementById('Wait').position(); return [p.x, p.y];")
    (
        ActionChains(page.driver)
        .move_to_element_with_offset(canvas(page), *at(page, "Wait"))
        .click_and_hold()
        .move_by_offset(40, 10)
        .move_by_offset(40, 10)
        .release()
        .perform()
    )
    page.wait(
        lambda: cy(page, "return cy.getElementById('Wait').position().x;") > before[0] + 30, 10, "the move"
    )
    moved = cy(page, "const p = cy.getElementById('Wait').position(); return [p.x, p.y];")

    click_tab(page, "JSON")
    editor = page.find_css(".cm-content")
    page.wait(lambda: '"next": "Wait"' in editor.text, 10, "the connection in the JSON")
    shown = json.loads(editor.text)
    assert shown["states"]["Wait"] == {"type": "wait", "seconds": 1, "end": True}
    assert shown["layout"]["Wait"] == [round(moved[0]), round(moved[1])]

    edited = {
        "start_at": "Start",
        "states": {
            "Start": {"type": "pass", "next": "FromJson"},
            "FromJson": {"type": "succeed"},
        },
    }
    editor.click()
    editor.send_keys(Keys.CONTROL, "a")
    editor.send_keys(Keys.DELETE)
    editor.send_keys(json.dumps(edited))
    page.wait(lambda: '"FromJson": [' in editor.text, 10, "the canvas placing the new state (layout)")
    click_tab(page, "Graph")
    page.wait(lambda: node_ids(page) == ["Start", "FromJson"], 10, "the JSON edit on the canvas")
    page.wait(lambda: edges(page) == {("Start", "FromJson")}, 10, "the new edge")
    in_view = cy(
        page,
        "const b = cy.getElementById('FromJson').renderedBoundingBox();"
        "return b.x1 >= 0 && b.y1 >= 0 && b.x2 <= cy.width() && b.y2 <= cy.height();",
    )
    assert in_view, "the new state is fitted into the view when the Graph tab is shown again"
    page.find_text("unsaved changes")
