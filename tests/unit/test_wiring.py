"""Build-time wiring checks: each mistake raises GraphBuildError naming the node and the key."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import BaseModel

from agentkit import END, START, Graph, GraphBuildError
from agentkit.reducers import Collect


class S(BaseModel):
    question: str
    draft: str | None = None
    notes: Annotated[list[str], Collect()] = []
    final: str | None = None


def write(key: str, value: object):
    return lambda state: {key: value}


def test_read_of_key_nobody_writes_names_node_and_key() -> None:
    g = Graph("g", S)
    g.add_node("finish", write("final", "x"), reads=["draft"], writes=["final"])
    g.add_edge(START, "finish")
    g.add_edge("finish", END)
    with pytest.raises(GraphBuildError, match=r"node 'finish' reads 'draft' but no node writes it"):
        g.compile()


def test_read_before_upstream_write_is_rejected() -> None:
    g = Graph("g", S)
    g.add_node("a", write("final", "x"), reads=["draft"], writes=["final"])
    g.add_node("b", write("draft", "y"), reads=["question"], writes=["draft"])
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", END)
    with pytest.raises(GraphBuildError, match=r"node 'a' reads 'draft' before it is written.*\['b'\]"):
        g.compile()


def test_read_of_unknown_field() -> None:
    g = Graph("g", S)
    g.add_node("a", write("final", "x"), reads=["qestion"], writes=["final"])
    g.add_edge(START, "a")
    with pytest.raises(GraphBuildError, match=r"node 'a' reads 'qestion', which is not a field"):
        g.compile()


def test_parallel_writes_without_reducer_name_both_branches() -> None:
    g = Graph("g", S)
    g.add_node("left", write("draft", "l"), reads=["question"], writes=["draft"])
    g.add_node("right", write("draft", "r"), reads=["question"], writes=["draft"])
    g.add_edge(START, ["left", "right"])
    g.add_edge(["left", "right"], END)
    with pytest.raises(GraphBuildError, match=r"'left' and 'right' both write 'draft' without a reducer"):
        g.compile()


def test_parallel_writes_with_reducer_compile_and_merge() -> None:
    g = Graph("g", S)
    g.add_node("left", write("notes", ["l"]), reads=["question"], writes=["notes"])
    g.add_node("right", write("notes", "r"), reads=["question"], writes=["notes"])
    g.add_node("join", lambda s: {"final": "+".join(sorted(s.notes))}, reads=["notes"], writes=["final"])
    g.add_edge(START, ["left", "right"])
    g.add_edge(["left", "right"], "join")
    g.add_edge("join", END)
    out = g.compile().invoke({"question": "q"})
    assert out.final == "l+r"
    assert sorted(out.notes) == ["l", "r"]


def test_exclusive_route_targets_may_write_same_key() -> None:
    g = Graph("g", S)
    g.add_node("start", write("draft", "d"), reads=["question"], writes=["draft"])
    g.add_node("yes", write("final", "Y"), reads=["draft"], writes=["final"])
    g.add_node("no", write("final", "N"), reads=["draft"], writes=["final"])
    g.add_edge(START, "start")
    g.add_route("start", lambda s: "yes" if s.question.endswith("?") else "no", ["yes", "no"])
    g.add_edge("yes", END)
    g.add_edge("no", END)
    compiled = g.compile()
    assert compiled.invoke({"question": "ok?"}).final == "Y"
    assert compiled.invoke({"question": "ok"}).final == "N"


def test_router_returning_unknown_label_names_it() -> None:
    g = Graph("g", S)
    g.add_node("start", write("draft", "d"), reads=["question"], writes=["draft"])
    g.add_edge(START, "start")
    g.add_route("start", lambda s: "maybe", {"yes": END})
    with pytest.raises(GraphBuildError, match=r"router after 'start' returned 'maybe'"):
        g.compile().invoke({"question": "q"})


def test_edge_to_unknown_node() -> None:
    g = Graph("g", S)
    g.add_node("a", write("draft", "d"), reads=["question"], writes=["draft"])
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    with pytest.raises(GraphBuildError, match=r"unknown node 'b'"):
        g.compile()


def test_graph_without_entry() -> None:
    g = Graph("g", S)
    g.add_node("a", write("draft", "d"), reads=["question"], writes=["draft"])
    g.add_edge("a", END)
    with pytest.raises(GraphBuildError, match=r"add_edge\(START"):
        g.compile()


def test_write_to_unknown_field() -> None:
    g = Graph("g", S)
    g.add_node("a", write("drafts", "d"), reads=["question"], writes=["drafts"])
    g.add_edge(START, "a")
    with pytest.raises(GraphBuildError, match=r"node 'a' writes 'drafts', which is not a field"):
        g.compile()


def test_undeclared_runtime_write_is_caught() -> None:
    g = Graph("g", S)
    g.add_node("a", lambda s: {"draft": "d", "final": "sneaky"}, reads=["question"], writes=["draft"])
    g.add_edge(START, "a")
    g.add_edge("a", END)
    with pytest.raises(GraphBuildError, match=r"node 'a' wrote \['final'\] but declared writes=\['draft'\]"):
        g.compile().invoke({"question": "q"})


def test_duplicate_node_name() -> None:
    g = Graph("g", S)
    g.add_node("a", write("draft", "d"), reads=["question"], writes=["draft"])
    with pytest.raises(GraphBuildError, match="already used"):
        g.add_node("a", write("draft", "d"), reads=["question"], writes=["draft"])


def test_missing_input_is_a_config_error() -> None:
    g = Graph("g", S)
    g.add_node("a", write("draft", "d"), reads=["question"], writes=["draft"])
    g.add_edge(START, "a")
    with pytest.raises(ValueError, match=r"input is missing \['question'\]"):
        g.compile().invoke({})


def test_node_errors_carry_the_node_name() -> None:
    def boom(state: S) -> dict[str, object]:
        raise RuntimeError("kaput")

    g = Graph("g", S)
    g.add_node("explode", boom, reads=["question"], writes=["draft"])
    g.add_edge(START, "explode")
    with pytest.raises(RuntimeError, match="kaput") as info:
        g.compile().invoke({"question": "q"})
    assert "in node 'explode'" in "".join(getattr(info.value, "__notes__", []))
