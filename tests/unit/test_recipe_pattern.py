"""Recipe (docs/ARCHITECTURE.md): a new pattern is one module with a ``Pattern``, registered once.

The toy pattern below lives in this test module and touches no other file: registering it through
the public API is enough for ``agentkit run``, ``agentkit eval`` (with its own ``pattern_metrics``)
and knob checking to drive it like a built-in.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from pydantic import BaseModel, PositiveInt
from typer.testing import CliRunner

from agentkit import Agent, Graph, Sampling
from agentkit.backends import backend_kinds, register_backend, unregister_backend
from agentkit.backends.base import Backend, Choice, Generation, GenerationRequest, Usage
from agentkit.cli import app
from agentkit.graph import END, START
from agentkit.graphs import get_pattern, pattern_names, register_pattern, unregister_pattern
from agentkit.pattern import Pattern, ScoredExample, checked_knobs
from agentkit.vocab import Example, Question


class Echo(BaseModel):
    answer: str


class EchoResult(BaseModel):
    question: str
    replies: list[Echo] = []
    answer: str | None = None


@checked_knobs
def build_echo(backend: Backend | None = None, *, n: PositiveInt = 2) -> Graph[EchoResult]:
    agent = Agent("say", instructions="Repeat the answer.", input_type=Question, output_type=Echo, backend=backend,
                  n=n, sampling=Sampling(temperature=0.0, max_tokens=16))

    def pick(state: EchoResult) -> dict[str, object]:
        return {"answer": state.replies[0].answer if state.replies else None}

    graph = Graph("echo", EchoResult, inputs=["question"])
    graph.add_agent("say", agent, inputs=["question"], output="replies", many=True)
    graph.add_node("pick", pick, reads=["replies"], writes=["answer"])
    graph.add_edge(START, "say")
    graph.add_edge("say", "pick")
    graph.add_edge("pick", END)
    return graph


def echo_metrics(results: Sequence[ScoredExample]) -> dict[str, object]:
    return {"echoed_share": sum(r.prediction == "42" for r in results) / len(results)}


ECHO = Pattern("toy-echo", build_echo, Question, samples_knob="n", description="says 42",
               input_from=lambda e: Question(question=e.fields["question"]),
               prediction=lambda out: out.answer, extras=lambda out: {"replies": len(out.replies)},
               summarize=echo_metrics)


class FortyTwo:
    """A toy backend: every sample is the JSON answer 42."""

    provider = "toy"
    model = "toy-42"

    def __init__(self) -> None:
        self.requests: list[GenerationRequest] = []

    async def generate(self, request: GenerationRequest) -> Generation:
        self.requests.append(request)
        return Generation(choices=[Choice(text='{"answer":"42"}', finish_reason="stop")] * request.n,
                          usage=Usage(input_tokens=10, output_tokens=5 * request.n), model=self.model)


@pytest.fixture(scope="module", autouse=True)
def registered() -> Iterator[None]:
    register_pattern(ECHO)
    register_backend("toy-42", lambda model=None, base_url=None: FortyTwo(), help="answers 42")
    yield
    unregister_pattern("toy-echo")
    unregister_backend("toy-42")
    assert "toy-echo" not in pattern_names() and "toy-42" not in backend_kinds()


def test_registered_pattern_is_listed_and_found() -> None:
    assert "toy-echo" in pattern_names() and get_pattern("toy-echo") is ECHO
    assert set(ECHO.knobs) == {"n"} and ECHO.knobs["n"].type_name == "int > 0"


def test_run_drives_the_toy_pattern_from_the_cli() -> None:
    r = CliRunner().invoke(app, ["run", "toy-echo", "--question", "what?", "--backend", "toy-42", "--samples", "3"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["answer"] == "42" and len(out["replies"]) == 3


def test_knobs_are_checked_in_the_python_api_too() -> None:
    from agentkit.errors import ConfigError

    with pytest.raises(ConfigError, match=r"knob 'n' = 0 is not valid .*expected int > 0"):
        build_echo(FortyTwo(), n=0)
    with pytest.raises(ConfigError, match="has no knob 'm'"):
        ECHO.graph(FortyTwo(), m=1)


def test_eval_fills_pattern_metrics_from_the_toy_hook(tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"id": f"q{i}", "question": f"q{i}?", "label": "42" if i else "7"}) + "\n"
                            for i in range(3)), encoding="utf-8")
    r = CliRunner().invoke(app, ["eval", "toy-echo", "--dataset", str(rows), "--backend", "toy-42",
                                 "--out", str(tmp_path / "run"), "--no-progress"])
    assert r.exit_code == 0, r.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text(encoding="utf-8"))
    assert summary["n"] == 3 and summary["correct"] == 2
    assert summary["pattern_metrics"] == {"echoed_share": 1.0}
    assert "echoed share (pattern)" in (tmp_path / "run" / "report.md").read_text(encoding="utf-8")


def test_input_from_reads_the_shared_example_type() -> None:
    assert ECHO.input_from is not None
    assert ECHO.input_from(Example(id="a", fields={"question": "x"}, label="1")) == Question(question="x")
