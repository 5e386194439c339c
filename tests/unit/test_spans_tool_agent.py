"""The span tree of a ToolAgent run as a graph node: one ``invoke_agent`` span per agent node.

The graph opens the node's agent span; the ToolAgent's episode must put its facts on that span
rather than open a second ``invoke_agent`` nested inside it (which would show every tool-using node
twice in Phoenix's agent views and split its token rollup). Replayed real SmolLM2 turns from the
cassette tests/unit/test_tool_use.py uses (tests/cassettes/tool_calculator.jsonl).
"""

from __future__ import annotations

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import BaseModel

from agentkit import END, START, Graph, tracing
from tests.unit.test_tool_use import Number, calc_agent
from tests.unit.test_tracing import descendants, span_tree


class Twice(BaseModel):
    question: str
    first: Number | None = None
    second: Number | None = None


QUESTION = "What is 15 times 4?"
EPISODE = ("chat", "chat", "execute_tool calculator")  # call the calculator, read the result, answer


def _tool_graph() -> Graph[Twice]:
    """Two ToolAgent nodes: one named as its agent ("calc"), one not ("solve" runs agent "calc")."""
    g = Graph("tools", Twice, inputs=["question"])
    g.add_agent("calc", calc_agent(), inputs=["question"], output="first")
    g.add_agent("solve", calc_agent(), inputs=["question"], output="second")
    g.add_edge(START, "calc")
    g.add_edge("calc", "solve")
    g.add_edge("solve", END)
    return g


def _run_spans(spans: InMemorySpanExporter) -> list[ReadableSpan]:
    """The spans of the graph run only (building an agent runs its worked examples' tool calls)."""
    finished = spans.get_finished_spans()
    (workflow,) = [s for s in finished if s.name == "invoke_workflow tools"]
    return [s for s in finished if s.context.trace_id == workflow.context.trace_id]


async def test_one_invoke_agent_span_per_tool_agent_node(replay, spans: InMemorySpanExporter) -> None:
    graph = _tool_graph()
    spans.clear()
    out = await graph.compile(backend=replay("tool_calculator")).ainvoke({"question": QUESTION})
    assert out.first == out.second == Number(answer="60")

    run = _run_spans(spans)
    episode = tuple(("chat", ()) if n == "chat" else (n, ()) for n in sorted(EPISODE))
    assert span_tree(run) == (
        "invoke_workflow tools",
        (("invoke_agent calc", episode), ("invoke_agent solve", episode)),
    ), "each agent node is one invoke_agent span, its model calls and tool calls directly inside"

    agents = [s for s in run if s.name.startswith("invoke_agent ")]
    assert sorted(s.name for s in agents) == ["invoke_agent calc", "invoke_agent solve"]
    for agent in agents:
        attrs = dict(agent.attributes or {})
        inner = descendants(agent, run)
        chats = [s for s in inner if s.name.startswith("chat ")]
        assert sorted("chat" if s.name.startswith("chat ") else s.name for s in inner) == sorted(EPISODE)
        assert attrs["agentkit.node.kind"] == "tool_agent"
        assert attrs["agentkit.tool_agent.steps"] == 2 and attrs["agentkit.tool_agent.tool_calls"] == 1
        assert attrs["agentkit.llm.calls"] == len(chats) == 2, "the node's rollup counts each turn once"
        for key in ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"):
            assert attrs[key] == sum(c.attributes[key] for c in chats) > 0


async def test_a_tool_agent_run_on_its_own_still_gets_its_agent_span(replay, spans: InMemorySpanExporter) -> None:
    agent = calc_agent()
    spans.clear()
    await agent.arun({"question": QUESTION}, backend=replay("tool_calculator"))

    finished = spans.get_finished_spans()
    (root,) = [s for s in finished if s.name.startswith("invoke_agent ")]
    assert root.name == "invoke_agent calc" and root.parent is None
    assert root.attributes["agentkit.node.kind"] == "tool_agent"
    chats = [s for s in descendants(root, finished) if s.name.startswith("chat ")]
    assert root.attributes["agentkit.llm.calls"] == len(chats) == 2


def test_current_agent_span_is_only_the_innermost_open_span(spans: InMemorySpanExporter) -> None:
    assert tracing.current_agent_span() is None
    with tracing.workflow_span("g"):
        assert tracing.current_agent_span() is None, "a workflow is not an agent"
        with tracing.agent_span("a") as agent:
            assert tracing.current_agent_span() is agent
            with tracing.tool_span("t"):
                assert tracing.current_agent_span() is None, "an agent called from a tool gets its own span"
            assert tracing.current_agent_span() is agent
        assert tracing.current_agent_span() is None
