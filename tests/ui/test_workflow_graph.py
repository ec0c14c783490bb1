"""The editor's model (components/workflow_graph.py and workflow_edits.py): a definition drawn as a
graph, and each canvas edit as a new definition that stays a valid workflow where the edit allows it."""

from __future__ import annotations

from typing import Any

import pytest

from components import workflow_edits as edit
from components import workflow_graph as g
from components.choice_builder import mode_of, parse_operand
from engine.workflows.model import parse_definition
from engine.workflows.validate import validate_definition

SAMPLE: dict[str, Any] = {
    "start_at": "Start",
    "states": {
        "Start": {"type": "pass", "next": "Decide"},
        "Decide": {
            "type": "choice",
            "choices": [{"variable": "$.n", "numeric_greater_than": 3, "next": "Big"}],
            "default": "Small",
        },
        "Big": {
            "type": "task",
            "function_id": "fn-1",
            "catch": [{"error_equals": ["States.ALL"], "next": "Oops"}],
            "end": True,
        },
        "Small": {"type": "succeed"},
        "Oops": {"type": "fail", "error": "Broken"},
    },
}


def test_a_definition_becomes_nodes_and_every_kind_of_edge() -> None:
    graph = g.to_graph(SAMPLE, breakpoints=["Big"], function_names={"fn-1": "double"})
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert list(nodes) == ["Start", "Decide", "Big", "Small", "Oops"]
    assert nodes["Start"]["start"] and not nodes["Decide"]["start"]
    assert nodes["Big"]["breakpoint"] and nodes["Big"]["label"].startswith("● Big\nTask · double")
    assert nodes["Small"]["end"] and nodes["Big"]["end"] and not nodes["Start"]["end"]
    assert "x" not in nodes["Start"]  # no layout saved: the canvas lays it out
    edges = {(e["source"], e["target"], e["kind"]): e["label"] for e in graph["edges"]}
    assert edges == {
        ("Start", "Decide", "next"): "",
        ("Decide", "Big", "choice"): "$.n > 3",
        ("Decide", "Small", "default"): "default",
        ("Big", "Oops", "catch"): "catch States.ALL",
    }


def test_a_half_written_definition_is_drawn_not_refused() -> None:
    broken = {"start_at": 3, "states": {"A": "not an object", "B": {"type": "task", "next": "Nowhere"}}}
    graph = g.to_graph(broken)
    assert [n["id"] for n in graph["nodes"]] == ["A", "B"]
    assert graph["edges"] == []  # the dangling next is not drawn
    assert g.to_graph({"states": []}) == {"nodes": [], "edges": []}


def test_building_a_three_state_workflow_from_nothing_gives_a_valid_definition() -> None:
    d = g.blank_definition()
    d, first = edit.add_state(d, "pass")
    d, second = edit.add_state(d, "task")
    d, third = edit.add_state(d, "succeed")
    assert (first, second, third) == ("Pass", "Task", "Succeed")
    assert d["start_at"] == "Pass"
    d = edit.connect(d, "Pass", "Task")
    d = edit.connect(d, "Task", "Succeed")
    d["states"]["Task"]["function_id"] = "echo"
    definition, problems = validate_definition(d)
    assert problems == [] and definition is not None
    assert definition.states["Pass"].next == "Task" and not definition.states["Pass"].end
    assert set(d["layout"]) == {"Pass", "Task", "Succeed"}
    assert d["layout"]["Task"][1] > d["layout"]["Pass"][1]  # placed below


def test_new_names_are_unique_and_every_type_starts_valid_where_it_can() -> None:
    d = g.blank_definition()
    names = []
    for kind in ("task", "task", "task"):
        d, name = edit.add_state(d, kind)
        names.append(name)
    assert names == ["Task", "Task2", "Task3"]
    for kind in ("wait", "parallel", "map", "pass", "succeed", "fail"):
        body = edit.default_state(kind)
        parse_definition({"start_at": "X", "states": {"X": body}})  # raises when invalid


def test_connect_sets_next_adds_a_choice_rule_and_refuses_a_terminal_source() -> None:
    d = edit.connect(SAMPLE, "Big", "Small")
    assert d["states"]["Big"]["next"] == "Small" and "end" not in d["states"]["Big"]
    d = edit.connect(d, "Decide", "Oops")
    assert d["states"]["Decide"]["choices"][-1] == {"variable": "$", "is_present": True, "next": "Oops"}
    with pytest.raises(edit.EditError, match="ends the execution"):
        edit.connect(d, "Small", "Start")
    with pytest.raises(edit.EditError):
        edit.connect(d, "Start", "Start")
    assert SAMPLE["states"]["Big"].get("next") is None  # the input is never changed


def test_disconnect_each_kind_of_edge() -> None:
    edges = {e.kind: e for e in g.edges_of(SAMPLE)}
    d = edit.disconnect(SAMPLE, edges["next"])
    assert d["states"]["Start"] == {"type": "pass", "end": True}
    d = edit.disconnect(SAMPLE, edges["choice"])
    assert d["states"]["Decide"]["choices"] == []
    d = edit.disconnect(SAMPLE, edges["default"])
    assert "default" not in d["states"]["Decide"]
    d = edit.disconnect(SAMPLE, edges["catch"])
    assert "catch" not in d["states"]["Big"]


def test_deleting_a_state_removes_every_transition_into_it() -> None:
    d = edit.with_positions(SAMPLE, {"Start": [0, 0], "Big": [10, 100]})
    d = edit.delete_state(d, "Big")
    assert "Big" not in d["states"] and d["layout"] == {"Start": [0, 0]}
    assert d["states"]["Decide"]["choices"] == []
    d = edit.delete_state(d, "Start")
    assert d["start_at"] == "Decide"


def test_renaming_a_state_renames_every_reference() -> None:
    d = edit.with_positions(SAMPLE, {"Oops": [5, 5]})
    d = edit.rename_state(d, "Oops", "Handle error")
    assert d["states"]["Big"]["catch"][0]["next"] == "Handle error"
    assert d["layout"] == {"Handle error": [5, 5]}
    d = edit.rename_state(d, "Start", "Begin")
    assert d["start_at"] == "Begin"
    d = edit.rename_state(d, "Small", "Done")
    assert d["states"]["Decide"]["default"] == "Done"
    d = edit.rename_state(d, "Big", "Large")
    assert d["states"]["Decide"]["choices"][0]["next"] == "Large"
    with pytest.raises(edit.EditError, match="already a state"):
        edit.rename_state(d, "Large", "Done")
    with pytest.raises(edit.EditError):
        edit.rename_state(d, "Large", "  ")
    assert validate_definition(d)[1] == []


def test_positions_are_kept_rounded_and_only_for_states() -> None:
    d = edit.with_positions(SAMPLE, {"Start": [10.4, 20.6], "Ghost": [1, 1], "Big": "bad"})
    assert d["layout"] == {"Start": [10, 21]}
    assert g.to_graph(d)["nodes"][0]["x"] == 10


def test_choice_builder_operands_and_modes() -> None:
    assert parse_operand("numeric_greater_than", " 3 ") == 3
    assert parse_operand("numeric_equals", "2.5") == 2.5
    assert parse_operand("boolean_equals", "TRUE") is True
    assert parse_operand("is_present", "false") is False
    assert parse_operand("string_equals", " a ") == " a "
    assert parse_operand("string_equals_path", " $.x ") == "$.x"
    with pytest.raises(ValueError, match="needs a number"):
        parse_operand("numeric_less_than", "many")
    assert mode_of({"variable": "$.a", "string_equals": "x", "next": "B"}) == "compare"
    assert mode_of({"and": [{"variable": "$.a", "is_present": True}], "next": "B"}) == "and"
    assert mode_of({"not": {"variable": "$.a", "is_null": True}, "next": "B"}) == "not"
    deep = {"or": [{"and": [{"variable": "$.a", "is_null": True}]}], "next": "B"}
    assert mode_of(deep) is None  # edited as JSON
