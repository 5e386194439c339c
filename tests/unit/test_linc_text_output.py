"""The runtime extension LINC needs: agents whose output is constrained text (a grammar or regex)
read back into a pydantic type (agentkit._text_outputs.TextOutput), and add_agent(violations=...)."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel

from agentkit import END, START, Agent, Graph, SchemaViolation, TruncatedOutput
from agentkit._text_outputs import TextOutput
from agentkit.backends.base import Choice, Generation, GenerationRequest, Usage
from agentkit.errors import ConfigError


class Pair(BaseModel):
    a: int
    b: int


class Sum(BaseModel):
    total: int


class Canned:
    provider = "canned"
    model = "canned"

    def __init__(self, texts: list[str], finish: list[str] | None = None) -> None:
        self.texts, self.finish = texts, finish or ["stop"] * len(texts)
        self.requests: list[GenerationRequest] = []

    async def generate(self, request: GenerationRequest) -> Generation:
        self.requests.append(request)
        return Generation(choices=[Choice(text=t, finish_reason=f) for t, f in zip(self.texts, self.finish)],
                          usage=Usage(input_tokens=5, output_tokens=3))


def _read(text: str, inp: Pair) -> dict[str, int]:
    if not text.startswith(f"{inp.a}+{inp.b}="):
        raise ValueError(f"expected '{inp.a}+{inp.b}=' first")
    return {"total": int(text.split("=", 1)[1])}


SUMS = TextOutput(
    kind="regex",
    constraint=lambda p: rf"{p.a}\+{p.b}=[0-9]{{1,4}}",
    parse=_read,
    render=lambda p, s: f"{p.a}+{p.b}={s.total}",
    hint="Write the sum as a+b=total.",
)


def _agent(n: int = 3, min_valid: int = 1) -> Agent[Pair, Sum]:
    return Agent("add", instructions="Add.", input_type=Pair, output_type=Sum, text_output=SUMS, n=n,
                 examples=[(Pair(a=1, b=2), Sum(total=3))], min_valid=min_valid)


def test_constraint_hint_and_examples_come_from_the_text_output() -> None:
    backend = Canned(["4+5=9", "4+5=8", "4+5=9"])
    result = _agent().run(Pair(a=4, b=5), backend=backend)
    assert [o.total for o in result.outputs] == [9, 8, 9] and result.violations == []
    request = backend.requests[0]
    assert request.constraint is not None and request.constraint.kind == "regex"
    assert request.constraint.value == r"4\+5=[0-9]{1,4}"  # built from this input
    system, _, ex_reply, user = request.messages
    assert system.content == "Add.\nWrite the sum as a+b=total." and "JSON" not in system.content
    assert ex_reply.content == "1+2=3" and user.content == "A: 4\nB: 5"


def test_unparseable_and_truncated_samples_are_violations_with_their_own_types() -> None:
    backend = Canned(["4+5=9", "oops", "4+5=1"], finish=["stop", "stop", "length"])
    result = _agent().run(Pair(a=4, b=5), backend=backend)
    assert [o.total for o in result.outputs] == [9]
    assert len(result.violations) == 2
    assert "Sum: expected '4+5=' first in model output 'oops'" in result.violations[0]
    assert "stopped at max_tokens before the regex was complete" in result.violations[1]


def test_too_few_valid_samples_raise_the_first_violation() -> None:
    with pytest.raises(SchemaViolation, match="agent 'add': 2 of 2 samples failed validation"):
        _agent(n=2).run(Pair(a=4, b=5), backend=Canned(["x", "y"]))
    with pytest.raises(TruncatedOutput):
        _agent(n=1).run(Pair(a=4, b=5), backend=Canned(["4+5="], finish=["length"]))


def test_graph_can_keep_the_violations_of_an_agent_that_tolerates_them() -> None:
    class State(BaseModel):
        a: int
        b: int
        sums: list[Sum] = []
        bad: list[str] = []

    graph = Graph("g", State)
    graph.add_agent("add", _agent(min_valid=0), inputs=["a", "b"], output="sums", many=True, violations="bad")
    graph.add_edge(START, "add")
    graph.add_edge("add", END)
    out = asyncio.run(graph.compile(backend=Canned(["nope", "no", "n"])).ainvoke({"a": 4, "b": 5}))
    assert out.sums == [] and len(out.bad) == 3


def test_text_output_kind_is_checked() -> None:
    with pytest.raises(ConfigError, match="'grammar' or 'regex'"):
        TextOutput(kind="json_schema", constraint=str, parse=_read, render=lambda p, s: "")  # type: ignore[arg-type]
