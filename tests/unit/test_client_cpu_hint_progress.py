"""Client CPU per request (issue 13): the schema hint is built once per output type, the progress bar
redraws a few times a second (and not at all off a terminal), and both still say the same thing."""

from __future__ import annotations

import gc
import io
import time
import weakref
from typing import Any

import pytest
from pydantic import BaseModel, Field, create_model
from rich.console import Console

from agentkit import agent as agent_module
from agentkit.agent import Agent, _schema_hint, schema_hint
from agentkit.eval import _progress
from agentkit.eval._progress import EvalProgress
from agentkit.eval.metrics import ExampleResult


class _Verdict(BaseModel):
    label: str = Field(description="True, False or Uncertain")
    confidence: float
    notes: list[str] = []


class _Question(BaseModel):
    question: str


def _counting(model: type[BaseModel], monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the JSON schema builds of ``model`` (the cost the cache removes)."""
    calls = [0]
    original = model.model_json_schema.__func__  # type: ignore[attr-defined]

    def counted(cls: type[BaseModel], *args: Any, **kwargs: Any) -> dict[str, Any]:
        calls[0] += 1
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(model, "model_json_schema", classmethod(counted))
    return calls


def test_schema_hint_is_the_same_text_as_before_the_cache() -> None:
    expected = ('Reply with one JSON object: {"label": <True, False or Uncertain>, "confidence": <number>, '
                '"notes": <array>}')
    assert _schema_hint(_Verdict) == expected
    assert schema_hint(_Verdict) == expected
    assert schema_hint(_Verdict) == expected  # the cached answer too


def test_schema_hint_builds_the_schema_once_per_type(monkeypatch: pytest.MonkeyPatch) -> None:
    model = create_model("FreshReply", answer=(str, Field(description="the answer")))
    calls = _counting(model, monkeypatch)
    agent = Agent("a", instructions="Answer.", output_type=model, input_type=_Question)
    calls[0] = 0  # the constructor builds the schema once for the constraint
    for _ in range(5):
        messages = agent.messages(_Question(question="2+2?"))
    assert calls[0] == 1
    assert messages[0].content == 'Answer.\nReply with one JSON object: {"answer": <the answer>}'


def test_prefix_first_layout_also_builds_it_once(monkeypatch: pytest.MonkeyPatch) -> None:
    model = create_model("FreshTail", answer=(str, Field(description="the answer")))
    calls = _counting(model, monkeypatch)
    agent = Agent("a", instructions="Shared.", output_type=model, input_type=_Question, task="Yours.",
                  layout="prefix-first", examples=[(_Question(question="1+1?"), model(answer="2"))])
    calls[0] = 0  # the constructor builds the schema once for the constraint
    for _ in range(3):
        messages = agent.messages(_Question(question="2+2?"))
    assert calls[0] == 1
    assert messages[-1].content.endswith('Yours.\nReply with one JSON object: {"answer": <the answer>}')


def test_types_with_the_same_name_keep_their_own_hints() -> None:
    first = create_model("Reply", answer=(str, Field(description="a number")))
    second = create_model("Reply", answer=(str, Field(description="one of: yes, no")))
    assert schema_hint(first) != schema_hint(second)
    assert schema_hint(second).endswith('{"answer": <one of: yes, no>}')


def test_the_cache_does_not_keep_a_type_alive() -> None:
    model = create_model("Throwaway", answer=(str, ...))
    schema_hint(model)
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None
    assert all(t.__name__ != "Throwaway" for t in list(agent_module._HINTS))


def _result(i: int, *, correct: bool, error: str | None = None) -> ExampleResult:
    return ExampleResult(id=f"e{i}", prediction="4", label="4", correct=correct, latency_s=0.1, error=error,
                         error_type=None if error is None else "SchemaViolation")


def _show(console: Console) -> str:
    bar = EvalProgress(5, "direct · gsm8k", console=console)
    with bar:
        bar.update(_result(1, correct=True))
        bar.update(_result(2, correct=False, error="bad json"))
        bar.update(_result(3, correct=True))
    assert isinstance(console.file, io.StringIO)
    return console.file.getvalue()


@pytest.mark.parametrize("terminal", [True, False])
def test_the_bar_still_shows_counts_accuracy_and_errors(terminal: bool) -> None:
    shown = _show(Console(file=io.StringIO(), force_terminal=terminal, width=160))
    assert "direct · gsm8k" in shown
    assert "3/5" in shown
    assert "acc 66.7%" in shown
    assert "err 1" in shown


def test_off_a_terminal_the_bar_runs_no_redraw_thread() -> None:
    bar = EvalProgress(5, "x", console=Console(file=io.StringIO(), force_terminal=False))
    with bar:
        assert bar._progress.live._refresh_thread is None


def test_on_a_terminal_it_redraws_a_few_times_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    assert 1 <= _progress.REFRESH_PER_SECOND <= 4
    bar = EvalProgress(5, "x", console=Console(file=io.StringIO(), force_terminal=True, width=120))
    live = bar._progress.live
    frames = [0]
    redraw = live.refresh

    def counted() -> None:
        frames[0] += 1
        redraw()

    monkeypatch.setattr(live, "refresh", counted)
    with bar:
        assert live._refresh_thread is not None  # the clock keeps ticking between examples
        time.sleep(1.0)
    # rich's default (10 a second) would have drawn about 10 frames; 2 a second draws about 2, plus
    # the first and the last
    assert 1 <= frames[0] <= 1 + 4 + 1


def test_the_result_type_survives_garbage_collection_and_follows_the_output_type() -> None:
    """pydantic holds AgentResult[T] weakly: the agent keeps it, so a collection does not force a rebuild."""
    model = create_model("HeldReply", answer=(str, Field(description="the answer")))
    agent = Agent("a", instructions="Answer.", output_type=model, input_type=_Question)
    first = agent._result_type()
    ident = id(first)
    del first
    gc.collect()
    assert id(agent._result_type()) == ident and agent._result_type().__name__.endswith("[HeldReply]")
    agent.output_type = _Verdict
    assert agent._result_type().__name__.endswith("[_Verdict]")
