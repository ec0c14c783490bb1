"""JSONPath as Step Functions reads it (Jayway-style subset) and ResultPath writes."""

from __future__ import annotations

from typing import Any

import pytest

from engine.workflows.errors import StateError
from engine.workflows.jsonpath import PathError, check_path, read, write
from engine.workflows.model import RESULT_PATH_MATCH_FAILURE, RUNTIME

STORE: dict[str, Any] = {
    "store": {
        "book": [
            {"category": "reference", "author": "Nigel Rees", "title": "Sayings", "price": 8.95},
            {"category": "fiction", "author": "Evelyn Waugh", "title": "Sword", "price": 12.99},
            {
                "category": "fiction",
                "author": "Herman Melville",
                "title": "Moby Dick",
                "isbn": "0-553",
                "price": 8.99,
            },
            {
                "category": "fiction",
                "author": "J. R. R. Tolkien",
                "title": "LOTR",
                "isbn": "0-395",
                "price": 22.99,
            },
        ],
        "bicycle": {"color": "red", "price": 19.95},
    },
    "weird key": {"a.b": 1},
    "a": [1, 2, 3, 4],
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$", STORE),
        ("$.store.bicycle.color", "red"),
        ("$['store']['bicycle']['color']", "red"),
        ('$["store"].bicycle', {"color": "red", "price": 19.95}),
        ("$.store.book[0].title", "Sayings"),
        ("$.store.book[-1].title", "LOTR"),
        ("$['weird key']['a.b']", 1),
        ("$.weird\\ key", {"a.b": 1}),
    ],
)
def test_definite_paths_give_one_value(path: str, expected: Any) -> None:
    assert read(path, STORE) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$.store.book[*].author", ["Nigel Rees", "Evelyn Waugh", "Herman Melville", "J. R. R. Tolkien"]),
        ("$..author", ["Nigel Rees", "Evelyn Waugh", "Herman Melville", "J. R. R. Tolkien"]),
        ("$.store.*.color", ["red"]),
        ("$..book[2].title", ["Moby Dick"]),
        ("$..book[-1:].title", ["LOTR"]),
        ("$..book[0,1].title", ["Sayings", "Sword"]),
        ("$..book[:2].title", ["Sayings", "Sword"]),
        ("$.store.book[?(@.isbn)].title", ["Moby Dick", "LOTR"]),
        ("$.store.book[?(@.price < 10)].title", ["Sayings", "Moby Dick"]),
        ("$.store.book[?(@.price >= 12.99 && @.category == 'fiction')].title", ["Sword", "LOTR"]),
        ("$.store.book[?(@.author == 'Nigel Rees' || @.price > 20)].title", ["Sayings", "LOTR"]),
        ("$.store.book[?(!(@.category == 'fiction'))].title", ["Sayings"]),
        ("$.store.book[?(@.author =~ /.*melville/i)].title", ["Moby Dick"]),
        ("$.store.book[?(@.price > $.store.bicycle.price)].title", ["LOTR"]),
        ("$.a[0:2]", [1, 2]),  # AWS "InputPath, Parameters and ResultSelector": {"a": [1,2,3,4]} -> [1, 2]
        ("$.a[-2:]", [3, 4]),
        ("$.a[::2]", [1, 3]),
        ("$.nothing[*]", []),
        ("$.store.book[?(@.price > 100)]", []),
    ],
)
def test_indefinite_paths_give_a_list(path: str, expected: list[Any]) -> None:
    assert read(path, STORE) == expected


@pytest.mark.parametrize("path", ["$.nope", "$.store.book[9]", "$.store.bicycle.color.x", "$.a.b"])
def test_a_definite_path_that_matches_nothing_raises(path: str) -> None:
    with pytest.raises(PathError) as info:
        read(path, STORE)
    assert isinstance(info.value, StateError)
    assert info.value.error == RUNTIME
    assert path in info.value.cause


def test_context_object_is_read_with_double_dollar() -> None:
    context = {"Execution": {"Id": "exec-1", "Input": {"x": 1}}, "Map": {"Item": {"Index": 2, "Value": "v"}}}
    assert read("$$.Execution.Id", {}, context) == "exec-1"
    assert read("$$.Execution.Input.x", {}, context) == 1
    assert read("$$.Map.Item.Index", {}, context) == 2
    assert read("$$", {}, context) == context
    with pytest.raises(PathError):
        read("$$.Execution.Id", {})  # no context given


@pytest.mark.parametrize(
    ("path", "reference", "ok"),
    [
        ("$", True, True),
        ("$.a.b[0].c", True, True),
        ("$['a']['b c']", True, True),
        ("$.a[*]", True, False),
        ("$..a", True, False),
        ("$.a[0:1]", True, False),
        ("$.a[?(@.x)]", True, False),
        ("$$.Execution.Id", True, False),
        ("$$.Execution.Id", False, True),
        ("$.a[*]", False, True),
        ("a.b", False, False),
        ("", False, False),
        ("$.a[", False, False),
        ("$.a]", False, False),
        ("$.", False, False),
        ("$.a[?(@.x >)]", False, False),
        ("$.a[1:2:0]", False, False),
        ("$.a['unterminated]", False, False),
    ],
)
def test_check_path(path: str, reference: bool, ok: bool) -> None:
    reason = check_path(path, reference=reference)
    assert (reason is None) is ok, reason
    if not ok:
        assert reason


def test_write_replaces_adds_and_creates_intermediate_objects() -> None:
    data = {"a": 1, "b": {"c": 2}}
    assert write("$", data, "x") == "x"
    assert write("$.d", data, 3) == {"a": 1, "b": {"c": 2}, "d": 3}
    assert write("$.b.c", data, 9) == {"a": 1, "b": {"c": 9}}
    assert write("$.x.y.z", data, True) == {"a": 1, "b": {"c": 2}, "x": {"y": {"z": True}}}
    assert write("$['new key']", data, 0)["new key"] == 0
    assert write("$.list[1]", {"list": [1, 2, 3]}, "two") == {"list": [1, "two", 3]}
    assert data == {"a": 1, "b": {"c": 2}}  # the input is not modified


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("$.a.b", {"a": 5}),  # into a number
        ("$.x", "a string input"),
        ("$.x", [1, 2]),
        ("$.list[5]", {"list": [1]}),
        ("$.a[*]", {"a": []}),  # not a reference path
    ],
)
def test_write_that_cannot_apply_is_result_path_match_failure(path: str, data: Any) -> None:
    with pytest.raises(StateError) as info:
        write(path, data, 1)
    assert info.value.error == RESULT_PATH_MATCH_FAILURE
