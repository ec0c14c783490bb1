"""The workflow pages through NiceGUI's user simulation over a real platform (real functions, the real
runner): the list (empty state, search, status filter, pagination, delete behind a typed confirmation),
creating a workflow blank or by importing JSON/ASL (every problem listed), the editor (palette, the canvas's
connect/select/delete events, the side panel, the JSON tab both ways, validate, save -> a new version,
breakpoints), the Start tab (sync and async), and an execution's page: live statuses on the graph, the
state-run details, the debugger (edit input, Step, Continue, Abort), cancel and redrive."""

from __future__ import annotations

import json
from typing import Any

from nicegui.testing.user import User

from components.dag_canvas import DagCanvas
from engine.platform import Platform
from engine.principal import SYSTEM
from engine.services.function_schemas import FunctionCreate, FunctionUpdate
from tests.ui.conftest import log_in
from tests.ui.test_functions_pages import element, eventually, set_value

ECHO = "def handler(event, context):\n    print('echo saw', event)\n    return event\n"
BROKEN = 'def handler(event, context):\n    raise RuntimeError("broken on purpose")\n'


def two_states(function: str = "echo") -> dict[str, Any]:
    return {
        "start_at": "First",
        "states": {
            "First": {"type": "task", "function_id": function, "next": "Second"},
            "Second": {"type": "pass", "result": {"done": True}, "result_path": "$.marker", "end": True},
        },
    }


async def echo(platform: Platform, name: str = "echo", code: str = ECHO) -> None:
    await platform.functions.create(SYSTEM, FunctionCreate(name=name, runtime="python", code=code))


def rows(user: User, marker: str) -> int:
    try:
        return len(user.find(marker=marker).elements)
    except AssertionError:
        return 0


def canvas(user: User, marker: str = "editor-canvas") -> DagCanvas:
    found = element(user, marker)
    assert isinstance(found, DagCanvas)
    return found


def node_ids(user: User, marker: str = "editor-canvas") -> list[str]:
    return [n["id"] for n in canvas(user, marker).graph["nodes"]]


def edges(user: User) -> set[tuple[str, str, str]]:
    return {(e["source"], e["target"], e["kind"]) for e in canvas(user).graph["edges"]}


def editor_json(user: User) -> dict[str, Any]:
    return json.loads(element(user, "editor-json").value)


# --- the list --------------------------------------------------------------------------------------


async def test_the_empty_list_then_create_a_blank_workflow_and_land_in_its_editor(
    console: User, platform: Platform
) -> None:
    await log_in(console, then="/workflows")
    await console.should_see("No workflows yet", retries=50)
    console.find(marker="new-workflow").click()
    await console.should_see(marker="create-dialog")
    console.find(marker="create-name").type("first-flow")
    console.find(marker="create-submit").click()
    await console.should_see(marker="workflow-name", retries=50)
    await console.should_see("first-flow")
    workflow = await platform.workflows.get(SYSTEM, "first-flow")
    assert node_ids(console) == list(workflow.definition["states"]) == ["Start"]
    assert workflow.version == 1 and workflow.created_by == "admin"


async def test_an_import_lists_every_problem_then_asl_is_converted(console: User, platform: Platform) -> None:
    await echo(platform)
    await log_in(console, then="/workflows")
    console.find(marker="new-workflow").click()
    console.find(marker="create-name").type("imported")
    set_value(console, "create-source", "import")
    bad = {"start_at": "A", "states": {"A": {"type": "task", "next": "Nowhere"}, "Lost": {"type": "succeed"}}}
    set_value(console, "create-definition", json.dumps(bad))
    console.find(marker="create-submit").click()
    await console.should_see(marker="create-problem", retries=50)
    problems = [e.text for e in console.find(marker="create-problem").elements]
    assert any("states.A.function_id" in p for p in problems), problems
    assert any("Nowhere" in p for p in problems), problems
    assert any("Lost" in p and "unreachable" in p for p in problems), problems
    asl = {
        "StartAt": "Call",
        "States": {
            "Call": {"Type": "Task", "Resource": "arn:aws:lambda:eu-west-1:1:function:echo", "Next": "Done"},
            "Done": {"Type": "Succeed"},
        },
    }
    set_value(console, "create-definition", json.dumps(asl))
    console.find(marker="create-submit").click()
    await console.should_see(marker="workflow-name", retries=50)
    saved = (await platform.workflows.get(SYSTEM, "imported")).definition
    assert saved["start_at"] == "Call" and saved["states"]["Call"]["function_id"] == "echo"
    assert node_ids(console) == ["Call", "Done"]  # laid out by the canvas: no positions in an import


async def test_a_taken_name_is_named_on_the_name_field(console: User, platform: Platform) -> None:
    await platform.workflows.create(
        SYSTEM, {"name": "taken", "definition": two_states("x") | {"states": {"First": {"type": "succeed"}}}}
    )
    await log_in(console, then="/workflows")
    console.find(marker="new-workflow").click()
    console.find(marker="create-name").type("taken")
    console.find(marker="create-submit").click()
    await eventually(lambda: element(console, "create-name").error)
    assert "already exists" in element(console, "create-name").error


async def test_search_status_filter_and_pagination(console: User, platform: Platform) -> None:
    simple = {"start_at": "S", "states": {"S": {"type": "succeed"}}}
    for i in range(26):
        await platform.workflows.create(SYSTEM, {"name": f"bulk-{i:02d}", "definition": simple})
    await platform.workflows.create(SYSTEM, {"name": "alpha-one", "definition": simple, "status": "inactive"})
    await log_in(console, then="/workflows")
    await eventually(lambda: rows(console, "workflow-row") == 25)
    assert element(console, "workflows-older").enabled and not element(console, "workflows-newer").enabled
    console.find(marker="workflows-older").click()
    await eventually(lambda: rows(console, "workflow-row") == 2)
    await console.should_see("Page 2")
    console.find(marker="workflows-newer").click()
    await eventually(lambda: rows(console, "workflow-row") == 25)
    set_value(console, "filter-search", "ALPHA")
    await eventually(lambda: rows(console, "workflow-row") == 1)
    await console.should_see(marker="workflow-row-alpha-one")
    set_value(console, "filter-search", "")
    set_value(console, "filter-status", "inactive")
    await eventually(lambda: rows(console, "workflow-row") == 1)
    set_value(console, "filter-search", "bulk")
    await console.should_see("No workflows match these filters.", retries=50)


async def test_delete_needs_the_typed_name(console: User, platform: Platform) -> None:
    simple = {"start_at": "S", "states": {"S": {"type": "succeed"}}}
    await platform.workflows.create(SYSTEM, {"name": "doomed", "definition": simple})
    await log_in(console, then="/workflows")
    await console.should_see(marker="workflow-delete-doomed", retries=50)
    console.find(marker="workflow-delete-doomed").click()
    await console.should_see(marker="confirm-dialog")
    assert not element(console, "confirm-ok").enabled
    console.find(marker="confirm-typed").type("doomed")
    console.find(marker="confirm-ok").click()
    await console.should_see("No workflows yet", retries=50)
    assert (await platform.workflows.list(SYSTEM)).items == []
    audit = await platform.audit.list(SYSTEM, action="workflow.delete")
    assert len(audit.items) == 1


# --- the editor ------------------------------------------------------------------------------------


async def open_editor(
    console: User, platform: Platform, definition: dict[str, Any], name: str = "flow"
) -> str:
    workflow = await platform.workflows.create(SYSTEM, {"name": name, "definition": definition})
    await log_in(console, then=f"/workflows/{workflow.id}")
    await console.should_see(marker="editor-canvas", retries=50)
    return workflow.id


async def test_build_with_the_palette_and_canvas_events_then_save_a_new_version(
    console: User, platform: Platform
) -> None:
    await echo(platform)
    workflow_id = await open_editor(
        console, platform, {"start_at": "S", "states": {"S": {"type": "succeed"}}}
    )
    console.find(marker="palette-task").click()  # selected at once: the side panel shows it
    await console.should_see(marker="state-function")
    set_value(console, "state-function", "echo")
    console.find(marker="palette-pass").click()
    assert node_ids(console) == ["S", "Task", "Pass"]
    assert canvas(console).selected == "Pass"
    console.find(marker="editor-canvas").trigger("connect", {"source": "Task", "target": "Pass"})
    console.find(marker="editor-canvas").trigger("connect", {"source": "Pass", "target": "S"})
    assert edges(console) == {("Task", "Pass", "next"), ("Pass", "S", "next")}
    console.find(marker="editor-canvas").trigger("select", {"kind": "node", "id": "Task"})
    await console.should_see(marker="state-set-start")
    console.find(marker="state-set-start").click()
    await console.should_see(marker="editor-dirty")
    # the JSON tab shows the same definition
    shown = editor_json(console)
    assert shown["start_at"] == "Task" and shown["states"]["Task"] == {
        "type": "task",
        "function_id": "echo",
        "next": "Pass",
    }
    console.find(marker="editor-validate").click()
    await console.should_see("The definition is valid.", retries=50)
    console.find(marker="editor-save").click()
    await console.should_see("Saved version 2", retries=50)
    saved = await platform.workflows.get(SYSTEM, workflow_id)
    assert saved.version == 2 and saved.definition["start_at"] == "Task"
    assert {"Task", "Pass"} <= set(saved.definition["layout"])  # placed where added (S: by the browser)
    assert len(await platform.workflows.versions(SYSTEM, workflow_id)) == 2
    assert element(console, "workflow-version").text == "v2"
    await console.should_not_see(marker="editor-dirty")


async def test_an_invalid_definition_is_refused_with_every_problem_listed(
    console: User, platform: Platform
) -> None:
    workflow_id = await open_editor(
        console, platform, {"start_at": "S", "states": {"S": {"type": "succeed"}}}
    )
    console.find(marker="palette-task").click()  # no function yet, and unreachable
    console.find(marker="palette-choice").click()  # no rules yet, and unreachable
    console.find(marker="editor-save").click()
    await console.should_see(marker="editor-problem-count", retries=50)
    problems = [e.text for e in console.find(marker="editor-problem").elements]
    assert any(p.startswith("states.Task.function_id") for p in problems), problems
    assert any(p.startswith("states.Choice.choices") for p in problems), problems
    assert sum("unreachable" in p for p in problems) == 2, problems
    assert (await platform.workflows.get(SYSTEM, workflow_id)).version == 1


async def test_deleting_a_state_and_a_transition_on_the_canvas(console: User, platform: Platform) -> None:
    await echo(platform)
    await open_editor(console, platform, two_states())
    assert edges(console) == {("First", "Second", "next")}
    console.find(marker="editor-canvas").trigger("select", {"kind": "edge", "id": "e0"})
    await console.should_see(marker="edge-summary")
    await console.should_see("First → Second (next)")
    console.find(marker="edge-remove").click()
    await eventually(lambda: edges(console) == set())
    assert editor_json(console)["states"]["First"]["end"] is True
    console.find(marker="editor-canvas").trigger("delete", {"kind": "node", "id": "Second"})
    await eventually(lambda: node_ids(console) == ["First"])
    assert "Second" not in editor_json(console)["states"]


async def test_a_json_edit_shows_on_the_canvas_and_a_bad_one_is_named(
    console: User, platform: Platform
) -> None:
    await echo(platform)
    await open_editor(console, platform, two_states())
    definition = editor_json(console)
    definition["states"]["Second"]["next"] = "Third"
    definition["states"]["Second"].pop("end")
    definition["states"]["Third"] = {"type": "succeed"}
    set_value(console, "editor-json", json.dumps(definition, indent=2))
    await eventually(lambda: node_ids(console) == ["First", "Second", "Third"])
    assert ("Second", "Third", "next") in edges(console)
    set_value(console, "editor-json", '{"start_at": "First", "states": ')
    await console.should_see("Not valid JSON yet", retries=50)
    assert node_ids(console) == ["First", "Second", "Third"]  # the canvas keeps the last good one


async def test_the_side_panel_renames_and_builds_choice_rules(console: User, platform: Platform) -> None:
    await echo(platform)
    definition = two_states()
    definition["states"]["Second"] = {
        "type": "choice",
        "choices": [{"variable": "$.n", "numeric_greater_than": 1, "next": "Big"}],
        "default": "Small",
    }
    definition["states"]["Big"] = {"type": "succeed"}
    definition["states"]["Small"] = {"type": "fail", "error": "TooSmall"}
    workflow_id = await open_editor(console, platform, definition)
    console.find(marker="editor-canvas").trigger("select", {"kind": "node", "id": "Big"})
    await console.should_see(marker="state-name")
    set_value(console, "state-name", "Large")
    console.find(marker="state-name").trigger("keydown.enter")
    await eventually(lambda: "Large" in node_ids(console))
    console.find(marker="editor-canvas").trigger("select", {"kind": "node", "id": "Second"})
    await console.should_see(marker="choice-builder")
    assert element(console, "choice-next-0").value == "Large"  # the rename reached the rule
    set_value(console, "choice-0-0-value", "10")
    console.find(marker="choice-add-rule").click()
    set_value(console, "choice-1-0-variable", "$.kind")
    set_value(console, "choice-1-0-operator", "string_equals")
    set_value(console, "choice-1-0-value", "vip")
    set_value(console, "choice-next-1", "Large")
    set_value(console, "choice-mode-1", "not")
    rules = editor_json(console)["states"]["Second"]["choices"]
    assert rules[0] == {"variable": "$.n", "numeric_greater_than": 10, "next": "Large"}
    assert rules[1] == {"not": {"variable": "$.kind", "string_equals": "vip"}, "next": "Large"}
    set_value(console, "choice-0-0-value", "ten")
    await eventually(
        lambda: element(console, "choice-0-0-value").error == "numeric_greater_than needs a number"
    )
    console.find(marker="editor-save").click()
    await console.should_see("Saved version 2", retries=50)
    saved = (await platform.workflows.get(SYSTEM, workflow_id)).definition
    assert saved["states"]["Second"]["choices"][0]["numeric_greater_than"] == 10
    assert "Large" in saved["states"] and "Big" not in saved["states"]


async def test_breakpoints_toggled_in_the_editor_are_saved(console: User, platform: Platform) -> None:
    await echo(platform)
    workflow_id = await open_editor(console, platform, two_states())
    console.find(marker="editor-canvas").trigger("select", {"kind": "node", "id": "Second"})
    await console.should_see(marker="state-breakpoint")
    set_value(console, "state-breakpoint", True)
    await eventually(lambda: canvas(console).graph["nodes"][1]["breakpoint"])
    assert (await platform.workflows.get(SYSTEM, workflow_id)).breakpoints == ["Second"]
    audit = await platform.audit.list(SYSTEM, action="workflow.breakpoints")
    assert len(audit.items) == 1


async def test_versions_can_be_viewed_and_loaded_into_the_editor(console: User, platform: Platform) -> None:
    await echo(platform)
    workflow_id = await open_editor(console, platform, two_states())
    changed = two_states()
    changed["states"]["Second"]["result"] = {"done": "twice"}
    await platform.workflows.update(SYSTEM, workflow_id, {"definition": changed})
    await console.should_see(marker="version-2", retries=50)  # live: WorkflowChanged
    assert element(console, "workflow-version").text == "v2"
    assert editor_json(console)["states"]["Second"]["result"] == {"done": "twice"}  # not edited here: follows
    console.find(marker="version-load-1").click()
    await eventually(lambda: editor_json(console)["states"]["Second"]["result"] == {"done": True})
    await console.should_see(marker="editor-dirty")


# --- starting and tracing --------------------------------------------------------------------------


async def test_sync_start_shows_the_result(console: User, platform: Platform) -> None:
    await echo(platform)
    workflow_id = await open_editor(console, platform, two_states())
    console.find(marker="tab-start").click()
    set_value(console, "start-input", '{"n": 41}')
    set_value(console, "start-mode", "sync")
    console.find(marker="start-submit").click()
    await console.should_see(marker="start-result-output", retries=300)
    assert json.loads(element(console, "start-result-output").text) == {"n": 41, "marker": {"done": True}}
    assert element(console, "start-result-status").text == "succeeded"
    page = await platform.workflows.executions(SYSTEM, workflow=workflow_id)
    assert [e.source for e in page.items] == ["console"]
    set_value(console, "start-input", "{nope")
    await console.should_see("The input is not JSON", retries=50)
    assert not element(console, "start-submit").enabled


async def test_async_start_opens_the_execution_and_the_states_turn_green_live(
    console: User, platform: Platform
) -> None:
    await echo(platform)
    await open_editor(console, platform, two_states())
    console.find(marker="tab-start").click()
    set_value(console, "start-input", '{"n": 1}')
    console.find(marker="start-submit").click()
    await console.should_see(marker="execution-graph", retries=100)
    graph = canvas(console, "execution-graph")
    await eventually(lambda: graph.statuses == {"First": "succeeded", "Second": "succeeded"}, retries=300)
    await eventually(lambda: element(console, "execution-status").text == "succeeded")
    assert rows(console, "state-run-row") == 2
    console.find(marker="execution-graph").trigger("select", {"kind": "node", "id": "First"})
    await console.should_see(marker="state-detail-invocation")
    assert json.loads(element(console, "state-detail-input").text) == {"n": 1}
    await console.should_see("echo saw {'n': 1}", retries=100)  # the invocation's logs


async def test_the_debugger_edit_input_step_continue(console: User, platform: Platform) -> None:
    await echo(platform)
    definition = two_states()
    definition["states"]["Third"] = {"type": "pass", "end": True}
    definition["states"]["Second"] = {"type": "pass", "next": "Third"}
    workflow = await platform.workflows.create(
        SYSTEM, {"name": "debugged", "definition": definition, "breakpoints": ["First"]}
    )
    execution = await platform.workflows.start(SYSTEM, workflow.id, {"n": 1})
    await log_in(console, then=f"/executions/{execution.id}")
    await console.should_see(marker="debugger-state", retries=200)
    await console.should_see("Paused before First")
    assert json.loads(element(console, "debugger-input").value) == {"n": 1}
    assert canvas(console, "execution-graph").statuses.get("First") == "paused"
    set_value(console, "debugger-input", "{oops")
    await console.should_see("Not JSON", retries=50)
    assert not element(console, "debug-step").enabled
    set_value(console, "debugger-input", '{"n": 2}')
    console.find(marker="debug-step").click()  # runs First with the edited input, pauses before Second
    await console.should_see("Paused before Second", retries=200)
    console.find(marker="debug-continue").click()
    await eventually(lambda: element(console, "execution-status").text == "succeeded", retries=300)
    done = await platform.workflows.execution(SYSTEM, execution.id)
    assert done.output == {"n": 2}
    actions = {a.action for a in (await platform.audit.list(SYSTEM, limit=100)).items}
    assert {"execution.edit_input", "execution.step", "execution.continue"} <= actions


async def test_abort_a_paused_execution(console: User, platform: Platform) -> None:
    await echo(platform)
    workflow = await platform.workflows.create(
        SYSTEM, {"name": "aborted", "definition": two_states(), "breakpoints": ["Second"]}
    )
    execution = await platform.workflows.start(SYSTEM, workflow.id, {})
    await log_in(console, then=f"/executions/{execution.id}")
    await console.should_see("Paused before Second", retries=200)
    console.find(marker="debug-abort").click()
    await eventually(lambda: element(console, "execution-status").text == "cancelled", retries=100)
    await console.should_not_see(marker="debugger")


async def test_cancel_a_running_execution(console: User, platform: Platform) -> None:
    definition = {"start_at": "Nap", "states": {"Nap": {"type": "wait", "seconds": 60, "end": True}}}
    workflow = await platform.workflows.create(SYSTEM, {"name": "sleepy", "definition": definition})
    execution = await platform.workflows.start(SYSTEM, workflow.id, {})
    await log_in(console, then=f"/executions/{execution.id}")
    await eventually(lambda: canvas(console, "execution-graph").statuses.get("Nap") == "running", retries=200)
    console.find(marker="execution-cancel").click()
    await eventually(lambda: element(console, "execution-status").text == "cancelled", retries=100)
    await console.should_not_see(marker="execution-cancel")


async def test_redrive_from_the_failed_state(console: User, platform: Platform) -> None:
    await echo(platform, "flaky", BROKEN)
    workflow = await platform.workflows.create(
        SYSTEM, {"name": "redriven", "definition": two_states("flaky")}
    )
    execution = await platform.workflows.run(SYSTEM, workflow.id, {"n": 5}, wait_sec=60)
    assert execution.status == "failed"
    await log_in(console, then=f"/executions/{execution.id}")
    await console.should_see(marker="execution-redrive", retries=100)
    await console.should_see("broken on purpose")
    assert canvas(console, "execution-graph").statuses == {"First": "failed"}
    await platform.functions.update(SYSTEM, "flaky", FunctionUpdate(code=ECHO))
    console.find(marker="execution-redrive").click()
    await eventually(lambda: element(console, "execution-status").text == "succeeded", retries=300)
    assert canvas(console, "execution-graph").statuses == {"First": "succeeded", "Second": "succeeded"}
    await console.should_not_see(marker="execution-redrive")


async def test_the_executions_list_filters_by_workflow_and_status(console: User, platform: Platform) -> None:
    await echo(platform)
    await echo(platform, "flaky", BROKEN)
    good = await platform.workflows.create(SYSTEM, {"name": "good", "definition": two_states()})
    bad = await platform.workflows.create(SYSTEM, {"name": "bad", "definition": two_states("flaky")})
    for _ in range(2):
        await platform.workflows.run(SYSTEM, good.id, {}, wait_sec=60)
    await platform.workflows.run(SYSTEM, bad.id, {}, wait_sec=60)
    await log_in(console, then="/executions")
    await eventually(lambda: rows(console, "execution-row") == 3)
    set_value(console, "filter-status", "failed")
    await eventually(lambda: rows(console, "execution-row") == 1)
    set_value(console, "filter-status", "")
    set_value(console, "filter-workflow", "good")
    console.find(marker="apply-filters").click()
    await eventually(lambda: rows(console, "execution-row") == 2)
    set_value(console, "filter-workflow", "no-such-workflow")
    console.find(marker="apply-filters").click()
    await console.should_see("workflow not found", retries=50)
    await platform.workflows.start(SYSTEM, good.id, {})  # live: a new row on the unfiltered list
    set_value(console, "filter-workflow", "")
    console.find(marker="apply-filters").click()
    await eventually(lambda: rows(console, "execution-row") == 4, retries=100)
