"""ToolAgent mechanics on replayed real SmolLM2 turns: call -> observation -> final answer, tool
errors fed back, max_steps, the forced last turn, verifiers and retrieval as tools, tracing.

Cassettes: tests/cassettes/tool_*.jsonl (AGENTKIT_RECORD=1 re-records them from the real model).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import BaseModel, Field

from agentkit import Sampling
from agentkit.backends.base import Choice, Generation, GenerationRequest
from agentkit.errors import ConfigError, ToolError
from agentkit.tool_use import FINAL_ACTION, ToolAgent, ToolAgentResult, ToolExample, ToolStepsExhausted
from agentkit.tools import RetrievalIndex, Tool, ToolRegistry, calculator, retrieval_tool, tool, verifier_tool
from agentkit.verifiers import ArithmeticVerifier, Verdict
from tests.helpers import Recording
from tests.unit.test_retrieval import HashingEmbedder


class Question(BaseModel):
    question: str


class Number(BaseModel):
    answer: str = Field(max_length=24, description="the final number")


class Short(BaseModel):
    answer: str = Field(max_length=60, description="the answer in a few words")


SAMPLING = Sampling(max_tokens=80)
CALC_SHOTS = [
    ToolExample(
        input=Question(
            question="Tom has 3 boxes with 5 apples in each box. He eats 2 apples. How many apples are left?"
        ),
        calls=[("calculator", {"expression": "3*5-2"})],
        output=Number(answer="13"),
    ),
    ToolExample(
        input=Question(question="Mia had 50 stickers and gave away 18. How many stickers does she have now?"),
        calls=[("calculator", {"expression": "50-18"})],
        output=Number(answer="32"),
    ),
    ToolExample(
        input=Question(question="36 candies are split equally among 4 bags. How many candies are in each bag?"),
        calls=[("calculator", {"expression": "36/4"})],
        output=Number(answer="9"),
    ),
]


def calc_agent(**kw: Any) -> ToolAgent[Question, Number]:
    options: dict[str, Any] = {"max_steps": 3, "sampling": SAMPLING, "examples": CALC_SHOTS}
    options.update(kw)
    return ToolAgent(
        "calc",
        instructions="Answer the question. Use the calculator for arithmetic.",
        tools=[calculator],
        input_type=Question,
        output_type=Number,
        **options,
    )


def _actions(request: GenerationRequest) -> set[str]:
    """The action names the request's JSON schema admits (what guided decoding can produce)."""
    schema = request.constraint.value  # type: ignore[union-attr]
    defs = schema.get("$defs", {})
    variants = [defs[r["$ref"].split("/")[-1]] for r in schema["oneOf"]] if "oneOf" in schema else [schema]
    return {v["properties"]["action"]["const"] for v in variants}


# --------------------------------------------------------------------------- the happy path
async def test_tool_call_then_observation_then_final_answer(replay, spans: InMemorySpanExporter) -> None:
    backend = Recording(replay("tool_calculator"))
    result = await calc_agent().arun(Question(question="What is 15 times 4?"), backend=backend)

    assert isinstance(result, ToolAgentResult) and result.output == Number(answer="60")
    call, final = result.steps
    assert call.action == "calculator" and call.args == {"expression": "15*4"} and call.error is None
    assert call.observation == "Result: 60" == "Result: " + calculator(expression=call.args["expression"])
    assert final.action == FINAL_ACTION and json.loads(final.reply) == {
        "action": FINAL_ACTION,
        "answer": {"answer": "60"},
    }
    assert (result.tool_calls, result.tool_errors, result.invalid_steps) == (1, 0, 0)
    assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0 and result.finish_reasons == ["stop"] * 2

    # two model turns; the second sees the first reply and the observation, in order
    first, second = backend.requests
    assert _actions(first) == _actions(second) == {"calculator", FINAL_ACTION}
    assert second.messages[: len(first.messages)] == first.messages
    added = second.messages[len(first.messages) :]
    assert [(m.role, m.content) for m in added] == [("assistant", call.reply), ("user", "Result: 60")]
    system = first.messages[0].content
    assert (
        "- calculator: Evaluate an arithmetic expression exactly" in system
        and '"expression": <the arithmetic' in system
    )
    # the three worked examples come before the question, their observations computed by the real tool
    assert [m.content for m in first.messages if m.role == "user"] == [
        "Question: " + CALC_SHOTS[0].input.question,
        "Result: 13",  # type: ignore[attr-defined]
        "Question: " + CALC_SHOTS[1].input.question,
        "Result: 32",  # type: ignore[attr-defined]
        "Question: " + CALC_SHOTS[2].input.question,
        "Result: 9",  # type: ignore[attr-defined]
        "Question: What is 15 times 4?",
    ]

    finished = {s.name: s for s in spans.get_finished_spans()}
    root = finished["invoke_agent calc"]
    assert root.attributes["agentkit.tool_agent.tool_calls"] == 1 and root.attributes["agentkit.tool_agent.steps"] == 2
    children = [s.name for s in spans.get_finished_spans() if s.parent and s.parent.span_id == root.context.span_id]
    assert [n if n.startswith("execute_tool") else n.split()[0] for n in children] == [
        "chat",
        "execute_tool calculator",
        "chat",
    ]


def test_sync_run_and_messages_match_the_first_request(replay) -> None:
    backend = Recording(replay("tool_calculator"))
    agent = calc_agent(backend=backend)
    assert agent.run({"question": "What is 15 times 4?"}).output.answer == "60"
    assert backend.requests[0].messages == agent.messages(Question(question="What is 15 times 4?"))


# ----------------------------------------------------------------------------- max_steps
async def test_running_out_of_steps_is_a_clear_error_carrying_the_episode(replay) -> None:
    backend = Recording(replay("tool_calculator"))
    with pytest.raises(
        ToolStepsExhausted, match=r"tool agent 'calc' took 1 steps without a final answer \(calculator\)"
    ) as err:
        await calc_agent(max_steps=1).arun(Question(question="What is 15 times 4?"), backend=backend)
    assert "final_on_last_step=True" in str(err.value)
    (step,) = err.value.steps
    assert step.action == "calculator" and step.observation == "Result: 60"
    assert len(backend.requests) == 1


async def test_final_on_last_step_only_offers_the_answer_on_the_last_turn(replay) -> None:
    backend = Recording(replay("tool_calculator"))
    result = await calc_agent(max_steps=2, final_on_last_step=True).arun(
        Question(question="What is 15 times 4?"), backend=backend
    )
    first, last = backend.requests
    assert _actions(first) == {"calculator", FINAL_ACTION} and _actions(last) == {FINAL_ACTION}
    assert [s.action for s in result.steps] == ["calculator", FINAL_ACTION] and result.output.answer == "60"

    one = Recording(replay("tool_calculator"))
    forced = await calc_agent(max_steps=1, final_on_last_step=True).arun(
        Question(question="What is 15 times 4?"), backend=one
    )
    assert [s.action for s in forced.steps] == [FINAL_ACTION] and forced.tool_calls == 0
    assert _actions(one.requests[0]) == {FINAL_ACTION}
    assert forced.output.answer == "15"  # SmolLM2's answer to 15 x 4 without the calculator: wrong


async def test_tool_choice_required_makes_the_first_turn_a_tool_call(replay) -> None:
    backend = Recording(replay("tool_calculator"))
    agent = calc_agent(tool_choice="required", final_on_last_step=True, max_steps=2)
    result = await agent.arun(Question(question="What is 15 times 4?"), backend=backend)
    first, last = backend.requests  # a tool call is the only choice first, the answer the only one last
    assert first == agent.request(Question(question="What is 15 times 4?"))
    assert _actions(first) == {"calculator"} and _actions(last) == {FINAL_ACTION}
    assert [s.action for s in result.steps] == ["calculator", FINAL_ACTION] and result.output.answer == "60"
    with pytest.raises(ConfigError, match="tool_choice must be 'auto' or 'required'"):
        calc_agent(tool_choice="any")
    with pytest.raises(ConfigError, match="need max_steps >= 2"):
        calc_agent(tool_choice="required", final_on_last_step=True, max_steps=1)


# ------------------------------------------------------------------------------ tool errors
PRICES = {"apple": 2, "pear": 3, "melon": 5}


@tool
def price(item: str) -> int:
    """Price of one item in dollars.

    Args:
        item: the item's name, singular, e.g. "apple".
    """
    if item not in PRICES:
        raise KeyError(f"no price for {item!r}; known items: {', '.join(PRICES)}")
    return PRICES[item]


def shop_agent() -> ToolAgent[Question, Number]:
    shot = ToolExample(
        input=Question(question="How much does one pear cost?"),
        calls=[("price", {"item": "pear"})],
        output=Number(answer="3"),
    )
    return ToolAgent(
        "shop",
        instructions="Answer the question. Look prices up with the price tool.",
        tools=[price],
        input_type=Question,
        output_type=Number,
        examples=[shot],
        max_steps=3,
        sampling=SAMPLING,
    )


async def test_a_failing_tool_is_fed_back_as_an_observation_and_counted(replay, spans: InMemorySpanExporter) -> None:
    backend = Recording(replay("tool_error"))
    result = await shop_agent().arun(Question(question="How much does one banana cost?"), backend=backend)

    failed = result.steps[0]
    assert failed.action == "price" and failed.args == {"item": "banana"}
    assert failed.error == "tool 'price' failed: KeyError: \"no price for 'banana'; known items: apple, pear, melon\""
    assert failed.observation == f"Error: {failed.error}"
    assert result.tool_errors == 1 and result.tool_calls >= 1
    # the model saw the error text as its next observation, and the episode went on
    assert backend.requests[1].messages[-1].content == failed.observation
    assert result.steps[-1].action == FINAL_ACTION
    # honest note: SmolLM2 then invents a price instead of saying it does not know
    assert result.output.answer not in {"2", "3", "5"}
    price_spans = [s for s in spans.get_finished_spans() if s.name == "execute_tool price"]
    assert [s.attributes.get("error.type") for s in price_spans] == [None, "ToolError"] + [None] * (
        len(price_spans) - 2
    )


# -------------------------------------------------------- unknown tools cannot be called
class _IgnoresConstraints:
    """A scripted backend that returns fixed text whatever the schema says: a stand-in for an
    engine that silently drops the constraint, which is what validation must still catch."""

    provider, model = "scripted", "scripted"

    def __init__(self, texts: list[str]) -> None:
        self.texts = list(texts)
        self.requests: list[GenerationRequest] = []

    async def generate(self, request: GenerationRequest) -> Generation:
        self.requests.append(request)
        return Generation(choices=[Choice(text=self.texts.pop(0))])


async def test_unknown_tools_are_outside_the_grammar_and_rejected_if_a_backend_ignores_it() -> None:
    ran: list[str] = []

    @tool
    def echo(text: str) -> str:
        """Echo text back."""
        ran.append(text)
        return text

    agent = ToolAgent("safe", instructions="Answer.", tools=[echo], input_type=Question, output_type=Short)
    schema = agent.step_type.model_json_schema()
    assert {
        v["properties"]["action"]["const"] for v in schema["$defs"].values() if "action" in v.get("properties", {})
    } == {"echo", FINAL_ACTION}
    assert schema["$defs"]["CallEcho"]["additionalProperties"] is False

    backend = _IgnoresConstraints(
        [
            '{"action":"shell","args":{"cmd":"rm -rf /"}}',
            '{"action":"echo","args":{"text":"hi","extra":1}}',
            '{"action":"final_answer","answer":{"answer":"done"}}',
        ]
    )
    result = await agent.arun(Question(question="hello"), backend=backend)
    assert ran == [] and result.tool_calls == 0 and result.invalid_steps == 2
    assert [s.action for s in result.steps] == ["invalid", "invalid", FINAL_ACTION]
    assert result.steps[0].reply == '{"action":"shell","args":{"cmd":"rm -rf /"}}'
    assert "does not match any of the expected tags" in result.steps[0].error  # type: ignore[operator]
    assert len(result.violations) == 2 and result.output.answer == "done"
    assert backend.requests[1].messages[-1].content.startswith("Error: that reply was not a valid action")


# ------------------------------------------------------------------ verifiers and retrieval
async def test_a_verifier_offered_as_a_tool(replay, spans: InMemorySpanExporter) -> None:
    check = verifier_tool(
        ArithmeticVerifier(), name="check_arithmetic", candidate_description="a worked calculation such as 3*4 = 12"
    )
    shot = ToolExample(
        input=Question(question="Tom has 3 boxes with 5 apples in each box. How many apples?"),
        calls=[("check_arithmetic", {"candidate": "3*5 = 15"})],
        output=Number(answer="15"),
    )
    agent = ToolAgent(
        "checked",
        instructions="Answer the question. Check your arithmetic with check_arithmetic.",
        tools=[check],
        input_type=Question,
        output_type=Number,
        examples=[shot],
        sampling=SAMPLING,
    )
    result = await agent.arun(Question(question="What is 15 times 4?"), backend=replay("tool_verifier"))

    call = result.steps[0]
    assert call.action == "check_arithmetic" and call.args == {"candidate": "15*4 = 60"}
    verdict = Verdict.model_validate_json(call.observation.removeprefix("Result: "))  # type: ignore[union-attr]
    assert verdict == ArithmeticVerifier().verify("15*4 = 60") and verdict.ok is True
    assert result.steps[-1].action == FINAL_ACTION
    names = [s.name for s in spans.get_finished_spans()]
    assert "execute_tool check_arithmetic" in names and "execute_tool arithmetic" in names  # tool wraps verifier


def test_verifiers_and_functions_in_the_tools_list_are_wrapped() -> None:
    def double(x: int) -> int:
        """Double a number."""
        return 2 * x

    agent = ToolAgent(
        "mix",
        instructions="Answer.",
        tools=[ArithmeticVerifier(), double, calculator],
        input_type=Question,
        output_type=Number,
    )
    assert agent.tools.names() == ["arithmetic", "double", "calculator"]
    assert agent.tools.get("arithmetic").call({"candidate": "2+2 = 5"}).ok is False
    props = agent.tools.get("arithmetic").json_schema()["properties"]
    assert props["candidate"]["type"] == "string"


async def test_retrieval_tool_inside_a_tool_agent(replay) -> None:
    docs = {
        "paris": "Paris is the capital of France.",
        "nile": "The Nile is the longest river in Africa.",
        "everest": "Mount Everest is the highest mountain on Earth.",
        "zelda": "A Japanese game company created the Legend of Zelda.",
    }
    search = retrieval_tool(RetrievalIndex.from_documents(docs, embedder=HashingEmbedder()))
    shot = ToolExample(
        input=Question(question="Which river is the longest in Africa?"),
        calls=[("search", {"query": "longest river in Africa", "k": 1})],
        output=Short(answer="The Nile"),
    )
    agent = ToolAgent(
        "reader",
        instructions="Answer the question. Search the documents first.",
        tools=[search],
        input_type=Question,
        output_type=Short,
        examples=[shot],
        sampling=SAMPLING,
    )
    result = await agent.arun(
        Question(question="What is the highest mountain on Earth?"), backend=replay("tool_retrieval")
    )
    call = result.steps[0]
    assert call.action == "search" and call.args is not None and call.args["k"] == 1
    hit = json.loads(call.observation.removeprefix("Result: "))  # type: ignore[union-attr]
    assert hit["doc_id"] == "everest"
    assert result.output.answer == "Mount Everest"


# ------------------------------------------------------------------------------- config
def test_configuration_errors_name_the_agent_and_the_fix() -> None:
    base: dict[str, Any] = {"instructions": "x", "input_type": Question, "output_type": Number}
    with pytest.raises(ConfigError, match="needs at least one tool"):
        ToolAgent("a", tools=[], **base)
    with pytest.raises(ConfigError, match="may not be named 'final_answer'"):
        ToolAgent("a", tools=[Tool(lambda: 1, name=FINAL_ACTION)], **base)
    with pytest.raises(ConfigError, match="max_steps must be >= 1"):
        ToolAgent("a", tools=[calculator], max_steps=0, **base)
    with pytest.raises(ConfigError, match="example 0 calls unknown tool 'search'"):
        ToolAgent(
            "a",
            tools=[calculator],
            examples=[ToolExample(input=Question(question="q"), calls=[("search", {})], output=Number(answer="1"))],
            **base,
        )
    with pytest.raises(ConfigError, match="example 0 call to 'calculator' failed: .*division by zero"):
        ToolAgent(
            "a",
            tools=[calculator],
            examples=[
                ToolExample(
                    input=Question(question="q"),
                    calls=[("calculator", {"expression": "1/0"})],
                    output=Number(answer="1"),
                )
            ],
            **base,
        )
    with pytest.raises(ConfigError, match="already registered"):
        ToolAgent("a", tools=[calculator, calculator], **base)
    registry = ToolRegistry([calculator])
    assert ToolAgent("a", tools=registry, **base).tools is registry


async def test_run_time_errors() -> None:
    agent = calc_agent()
    with pytest.raises(ConfigError, match="tool agent 'calc' has no backend"):
        await agent.arun(Question(question="q"))
    with pytest.raises(ConfigError, match="one episode at a time; n must be 1"):
        await agent.arun(Question(question="q"), backend=_IgnoresConstraints([]), n=3)


async def test_long_observations_are_clipped() -> None:
    @tool
    def blob() -> str:
        """A very long result."""
        return "x" * 5000

    agent = ToolAgent(
        "clip", instructions="Answer.", tools=[blob], input_type=Question, output_type=Short, max_observation_chars=50
    )
    backend = _IgnoresConstraints(['{"action":"blob","args":{}}', '{"action":"final_answer","answer":{"answer":"ok"}}'])
    result = await agent.arun(Question(question="q"), backend=backend)
    assert result.steps[0].observation == "Result: " + "x" * 47 + "..."


def test_verifier_tool_binds_context_and_rejects_non_verifiers() -> None:
    from agentkit.verifiers import AnswerMatchVerifier

    gold = verifier_tool(AnswerMatchVerifier("label", "number"), name="check_answer", context={"label": "18"})
    assert gold.call({"candidate": "18.0"}).ok is True and gold.call({"candidate": "17"}).ok is False
    with pytest.raises(ConfigError, match="needs a Verifier"):
        verifier_tool(lambda c: True)  # type: ignore[arg-type]

    class Pair(BaseModel):
        premises_fol: list[str]
        conclusion_fol: str

    from agentkit.verifiers.fol import FOLVerifier

    fol = verifier_tool(FOLVerifier(), name="prove", candidate_type=Pair)
    verdict = fol.call({"candidate": {"premises_fol": ["∀x (P(x) → Q(x))", "P(a)"], "conclusion_fol": "Q(a)"}})
    assert verdict.label == "True"
    with pytest.raises(ToolError, match="candidate"):
        fol.call({"candidate": {"premises_fol": "P(a)"}})
