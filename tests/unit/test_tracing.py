"""Spans on replayed real SmolLM2 generations: the tree and attributes of every pattern, content
capture (off unless opted in), errors, retries, concurrency, annotate hooks, the no-op fast path.

Adding a pattern is one ``PatternCase`` entry; record its cassette once with
``AGENTKIT_RECORD=1 .venv/bin/python -m pytest tests/unit/test_tracing.py -k <pattern>``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import BaseModel

from agentkit import END, START, Graph, _tracing_setup, tracing
from agentkit.backends.base import OutputConstraint
from agentkit.decoding import GrammarCache
from agentkit.errors import BackendError
from agentkit.graphs import get_pattern
from agentkit.reducers import Tally
from tests.helpers import Flaky, Recording
from tests.unit.test_runtime import QUESTIONS, panel_graph

Tree = tuple[str, tuple["Tree", ...]]

DEPRECATED = {"gen_ai.system", "gen_ai.usage.prompt_tokens", "gen_ai.usage.completion_tokens", "gen_ai.prompt",
              "gen_ai.completion", "gen_ai.openai.request.seed", "gen_ai.openai.request.response_format"}
CONTENT_KEYS = {"gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions", "input.value",
                "output.value"}
CONTENT_PREFIXES = ("llm.input_messages.", "llm.output_messages.")
CHAT_REQUIRED = {"gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model", "gen_ai.request.choice.count",
                 "gen_ai.request.temperature", "gen_ai.request.max_tokens", "gen_ai.output.type",
                 "gen_ai.response.finish_reasons", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens",
                 "gen_ai.agent.name", "llm.model_name", "llm.token_count.prompt", "llm.token_count.completion",
                 "llm.token_count.total"}


@dataclass(frozen=True)
class PatternCase:
    pattern: str
    knobs: dict[str, Any]
    input: dict[str, Any]
    tree: Tree  # "chat" stands for any chat {model} span
    facts: dict[str, set[str]] = field(default_factory=dict)  # span name -> agentkit.* keys the pattern sets

    @property
    def cassette(self) -> str:
        return f"tracing_{self.pattern}"


MCCOT_TREE: Tree = ("invoke_workflow mccot", (
    ("invoke_agent sample_rationales", (("chat", ()),)),
    ("node vote", ()),
    ("node select_rationale", ()),
))

CASES = [
    PatternCase(
        "mccot",
        {"k": 3, "seed": 7, "answer_kind": "number", "max_tokens": 160},
        {"question": "Sara has 4 bags with 6 marbles in each bag. How many marbles does she have?"},
        MCCOT_TREE,
        {"node vote": {tracing.VOTE_COUNTS, tracing.VOTE_WINNER, tracing.VOTE_TOTAL, tracing.VOTE_AGREEMENT}},
    ),
    PatternCase(
        "direct",
        {"answer_kind": "number", "max_tokens": 48},
        {"question": "What is 15 minus 6?"},
        ("invoke_workflow direct", (("invoke_agent answer_directly", (("chat", ()),)), ("node record", ()))),
    ),
    PatternCase(
        "cot",
        {"answer_kind": "number", "max_tokens": 160, "max_reasoning_chars": 200},
        {"question": "What is 15 minus 6?"},
        ("invoke_workflow cot", (("invoke_agent think_then_answer", (("chat", ()),)), ("node record", ()))),
    ),
    PatternCase(
        "daslam",
        {"max_subquestions": 2, "answer_kind": "number", "max_tokens": 160, "max_rationale_chars": 200},
        {"question": "Tom buys 3 pens at 2 dollars each and a book at 5 dollars. How much does he spend?"},
        ("invoke_workflow daslam", (  # the recorded decomposition has two sub-questions
            ("invoke_agent initial_attempt", (("chat", ()),)),
            ("invoke_agent decomposition", (("chat", ()),)),
            ("node pose_subquestion", ()), ("invoke_agent sub_solving", (("chat", ()),)), ("node record_answer", ()),
            ("node pose_subquestion", ()), ("invoke_agent sub_solving", (("chat", ()),)), ("node record_answer", ()),
            ("invoke_agent final_answer", (("chat", ()),)),
            ("node conclude", ()),
        )),
    ),
    PatternCase(
        "maj",
        {"max_rounds": 1, "max_tokens": 120},
        {"question": "What is 7 times 8?", "candidate": "7 times 8 is 54, so the answer is 54."},
        ("invoke_workflow maj", (  # the recorded board splits in round 0 and deliberates once (max_rounds=1)
            ("invoke_agent deductive_reasoner", (("chat", ()),)),
            ("invoke_agent logical_reasoner", (("chat", ()),)),
            ("invoke_agent robust_reasoner", (("chat", ()),)),
            ("node record_round", ()),
            ("node deliberate", ()),
            ("invoke_agent deductive_reasoner", (("chat", ()),)),
            ("invoke_agent logical_reasoner", (("chat", ()),)),
            ("invoke_agent robust_reasoner", (("chat", ()),)),
            ("node record_round", ()),
            ("node aggregate", ()),
        )),
        {"node aggregate": {tracing.VOTE_COUNTS, tracing.VOTE_WINNER, tracing.VOTE_TOTAL, tracing.VOTE_AGREEMENT}},
    ),
    PatternCase(
        "linc",
        {"k": 2, "seed": 3, "max_tokens": 300},
        {"premises": ["All birds can fly.", "Tweety is a bird."], "conclusion": "Tweety can fly."},
        ("invoke_workflow linc", (
            ("invoke_agent semantic_parsing", (("chat", ()),)),
            ("node symbolic_inference", (("execute_tool fol_prover", ()), ("execute_tool fol_prover", ()))),
            ("node majority_vote", ()),
        )),
        {"node majority_vote": {tracing.VOTE_COUNTS, tracing.VOTE_WINNER, tracing.VOTE_TOTAL, tracing.VOTE_AGREEMENT}, "execute_tool fol_prover": {tracing.VERIFIER_VERDICT}},
    ),
    PatternCase(
        "cascade",
        {"k": 2, "seed": 5, "answer_kind": "number", "threshold": 1.0},
        {"question": "What is 9 plus 4?"},
        ("invoke_workflow cascade", (  # threshold 1.0: the small tier's split vote escalates
            ("node run_small", (MCCOT_TREE,)),
            ("node run_small_more_samples", (MCCOT_TREE,)),
            ("node final_answer", ()),
        )),
        {"node run_small": {tracing.CASCADE_TIER, tracing.CASCADE_ESCALATION_REASON, "agentkit.cascade.passed"},
         "node run_small_more_samples": {tracing.CASCADE_TIER, "agentkit.cascade.passed"}},
    ),
    PatternCase("sc", {"k": 3, "seed": 7, "answer_kind": "number", "max_tokens": 160, "max_reasoning_chars": 200},
                {"question": "What is 15 minus 6?"},
                ("invoke_workflow sc", (("invoke_agent sample_chains", (("chat", ()),)), ("node vote", ()))),
                {"node vote": {tracing.VOTE_COUNTS, tracing.VOTE_WINNER, tracing.VOTE_TOTAL, tracing.VOTE_AGREEMENT}}),
    PatternCase("majority-label", {"label": "True", "source": "train"}, {"question": "Is the sky blue?"},
                ("invoke_workflow majority-label", (("node predict_majority", ()),))),
]


def _canonical(tree: Tree) -> Tree:
    name, children = tree
    return name, tuple(sorted(_canonical(c) for c in children))


def span_tree(spans: Sequence[ReadableSpan]) -> Tree:
    children: dict[int | None, list[ReadableSpan]] = defaultdict(list)
    for s in spans:
        children[s.parent.span_id if s.parent else None].append(s)
    roots = children[None]
    assert len(roots) == 1, f"expected one root span, got {[r.name for r in roots]}"

    def node(s: ReadableSpan) -> Tree:
        name = "chat" if s.name.startswith("chat ") else s.name
        return name, tuple(sorted(node(c) for c in children[s.context.span_id]))

    return node(roots[0])


def descendants(span: ReadableSpan, spans: Sequence[ReadableSpan]) -> list[ReadableSpan]:
    ids = {span.context.span_id}
    out: list[ReadableSpan] = []
    grew = True
    while grew:
        grew = False
        for s in spans:
            if s.parent and s.parent.span_id in ids and s.context.span_id not in ids:
                ids.add(s.context.span_id)
                out.append(s)
                grew = True
    return out


def check_conventions(spans: Sequence[ReadableSpan], *, content: bool = False) -> None:
    """What DESIGN.md's tracing conventions promise for any graph run, whatever the pattern."""
    assert len({s.context.trace_id for s in spans}) == 1, "one run is one trace"
    ids = {s.context.span_id for s in spans}
    for s in spans:
        attrs = dict(s.attributes or {})
        assert s.parent is None or s.parent.span_id in ids, f"{s.name}: parent is outside the run"
        assert not DEPRECATED & set(attrs), f"{s.name} carries deprecated {DEPRECATED & set(attrs)}"
        assert not any(k.startswith("gen_ai.openai.") for k in attrs), s.name
        assert s.status.status_code is not StatusCode.ERROR, f"{s.name}: {s.status.description}"
        has_content = bool(CONTENT_KEYS & set(attrs)) or any(k.startswith(CONTENT_PREFIXES) for k in attrs)
        if not content:
            assert not has_content, f"{s.name} captured content without opt-in: {sorted(attrs)}"
        kind = s.name.split(" ", 1)[0]
        if kind == "chat":
            assert s.kind is SpanKind.CLIENT
            assert CHAT_REQUIRED <= set(attrs), f"{s.name} lacks {CHAT_REQUIRED - set(attrs)}"
            assert attrs["openinference.span.kind"] == "LLM" and attrs["gen_ai.operation.name"] == "chat"
            assert s.name == f"chat {attrs['gen_ai.request.model']}"
            assert len(attrs["gen_ai.response.finish_reasons"]) == attrs["gen_ai.request.choice.count"]
            assert attrs["llm.token_count.prompt"] == attrs["gen_ai.usage.input_tokens"]
            total = attrs["gen_ai.usage.input_tokens"] + attrs["gen_ai.usage.output_tokens"]
            assert attrs["llm.token_count.total"] == total
            assert attrs["gen_ai.usage.output_tokens"] > 0
        elif kind in ("invoke_agent", "invoke_workflow"):
            assert s.kind is SpanKind.INTERNAL
            chats = [c for c in descendants(s, spans) if c.name.startswith("chat ")]
            for key in ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"):
                assert attrs[key] == sum(c.attributes[key] for c in chats), f"{s.name}: {key} is not the rollup"
            assert attrs["agentkit.llm.calls"] == len(chats)
            assert not any(k.startswith("llm.token_count.") for k in attrs), "Phoenix would count the rollup twice"
            if kind == "invoke_agent":
                node = s.name.split(" ", 1)[1]
                assert attrs["gen_ai.operation.name"] == "invoke_agent" and attrs["gen_ai.agent.name"] == node
                assert attrs["openinference.span.kind"] == "AGENT"
                assert all(c.attributes["gen_ai.agent.name"] == node for c in chats)
            else:
                assert attrs["gen_ai.operation.name"] == "invoke_workflow"
                assert s.name == f"invoke_workflow {attrs['gen_ai.workflow.name']}"
                assert attrs["openinference.span.kind"] == "CHAIN"
        elif kind == "node":
            assert attrs["agentkit.node.kind"] in ("function", "verifier", "tool")
            assert attrs["agentkit.node.name"] == s.name.split(" ", 1)[1]
            assert attrs["openinference.span.kind"] == "CHAIN"
        elif kind == "execute_tool":
            assert attrs["gen_ai.operation.name"] == "execute_tool" and attrs["openinference.span.kind"] == "TOOL"
            assert s.name == f"execute_tool {attrs['gen_ai.tool.name']}"
        else:
            pytest.fail(f"span {s.name!r} follows none of the naming conventions")


def run_case(case: PatternCase, backend: Any) -> Any:
    pattern = get_pattern(case.pattern)
    inp = pattern.input_type.model_validate(case.input)
    return pattern.build(backend, **case.knobs).compile().invoke(inp)


# ------------------------------------------------------------------------------- every pattern
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.pattern)
def test_pattern_span_tree_and_attributes(case: PatternCase, replay, spans: InMemorySpanExporter) -> None:
    run_case(case, replay(case.cassette))
    finished = spans.get_finished_spans()
    assert span_tree(finished) == _canonical(case.tree), f"actual tree: {span_tree(finished)!r}"
    check_conventions(finished)
    by_name = {s.name: s for s in finished}
    for name, keys in case.facts.items():
        missing = keys - set(by_name[name].attributes or {})
        assert not missing, f"{name} lacks the pattern facts {missing}"


def test_every_registered_pattern_has_a_tracing_case() -> None:
    from agentkit.graphs import pattern_names

    missing = set(pattern_names()) - {c.pattern for c in CASES}
    assert not missing, f"no tracing case for {sorted(missing)}: add a PatternCase entry to CASES"


# ------------------------------------------------------------------------------ MC-CoT's facts
def test_mccot_vote_span_carries_the_tally(replay, spans: InMemorySpanExporter) -> None:
    case = CASES[0]
    out = run_case(case, replay(case.cassette))
    vote = next(s for s in spans.get_finished_spans() if s.name == "node vote")
    assert json.loads(vote.attributes[tracing.VOTE_COUNTS]) == out.votes.counts
    assert vote.attributes[tracing.VOTE_TOTAL] == out.votes.total
    assert vote.attributes[tracing.VOTE_SAMPLES] == case.knobs["k"]
    assert vote.attributes[tracing.VOTE_AGREEMENT] == pytest.approx(out.agreement)
    if out.answer is not None:
        assert vote.attributes[tracing.VOTE_WINNER] == out.answer


# ------------------------------------------------------------------------------ content capture
def _attribute_text(spans: Sequence[ReadableSpan]) -> str:
    return json.dumps([dict(s.attributes or {}) for s in spans], default=str)


def test_content_is_not_recorded_by_default(replay, spans: InMemorySpanExporter, monkeypatch) -> None:
    monkeypatch.delenv(tracing.ENV_CAPTURE, raising=False)
    case = CASES[0]
    out = run_case(case, replay(case.cassette))
    text = _attribute_text(spans.get_finished_spans())
    assert case.input["question"] not in text
    assert all(s.rationale not in text for s in out.samples)


def test_content_is_recorded_when_opted_in_by_env(replay, spans: InMemorySpanExporter, monkeypatch) -> None:
    monkeypatch.setenv(tracing.ENV_CAPTURE, "true")
    case = CASES[0]
    out = run_case(case, replay(case.cassette))
    finished = spans.get_finished_spans()
    check_conventions(finished, content=True)
    question = case.input["question"]
    by_name = {("chat" if s.name.startswith("chat ") else s.name): s for s in finished}
    chat = by_name["chat"].attributes
    messages = json.loads(chat["gen_ai.input.messages"])
    assert messages[0]["role"] == "system" and messages[-1]["role"] == "user"
    assert question in messages[-1]["parts"][0]["content"]
    outputs = json.loads(chat["gen_ai.output.messages"])
    assert len(outputs) == case.knobs["k"] and {o["role"] for o in outputs} == {"assistant"}
    assert chat[f"llm.input_messages.{len(messages) - 1}.message.content"] == messages[-1]["parts"][0]["content"]
    assert chat["llm.output_messages.0.message.content"] == outputs[0]["parts"][0]["content"]
    workflow = by_name["invoke_workflow mccot"].attributes
    assert json.loads(workflow["input.value"])["question"] == question
    assert json.loads(workflow["output.value"])["answer"] == out.answer
    agent = by_name["invoke_agent sample_rationales"].attributes
    assert json.loads(agent["input.value"]) == {"question": question}
    assert len(json.loads(agent["output.value"])) == len(out.samples)


def test_configure_flag_overrides_the_env(monkeypatch) -> None:
    monkeypatch.setattr(_tracing_setup, "_setup", _tracing_setup._Setup())
    monkeypatch.setenv(tracing.ENV_CAPTURE, "true")
    assert tracing.capture_content()
    assert tracing.configure(capture_content=False) is None, "no exporter asked for: nothing installed"
    assert not tracing.capture_content()
    monkeypatch.setenv(tracing.ENV_CAPTURE, "false")
    tracing.configure(capture_content=True)
    assert tracing.capture_content()


# ---------------------------------------------------------------------------- errors and retries
def test_backend_error_marks_chat_agent_and_workflow_spans(replay, spans: InMemorySpanExporter) -> None:
    graph = panel_graph().compile(backend=Flaky(replay("panel"), failures=1, error=BackendError))
    with pytest.raises(BackendError):
        graph.invoke({"question": QUESTIONS[0]})
    finished = spans.get_finished_spans()
    failed_chat = [s for s in finished if s.name.startswith("chat ") and s.status.status_code is StatusCode.ERROR]
    assert len(failed_chat) == 1
    chat = failed_chat[0]
    assert chat.attributes["error.type"] == "BackendError"
    assert [e.name for e in chat.events] == ["exception"]
    assert "simulated connection reset" in chat.events[0].attributes["exception.message"]
    agent = next(s for s in finished if s.context.span_id == chat.parent.span_id)
    assert agent.name.startswith("invoke_agent ") and agent.status.status_code is StatusCode.ERROR
    assert agent.attributes["error.type"] == "BackendError"
    root = next(s for s in finished if s.parent is None)
    assert root.name == "invoke_workflow panel" and root.status.status_code is StatusCode.ERROR


def test_each_retry_is_its_own_chat_span_under_one_agent_span(replay, spans: InMemorySpanExporter) -> None:
    graph = panel_graph().compile(backend=Flaky(replay("panel"), failures=1))
    graph.invoke({"question": QUESTIONS[0]})
    finished = spans.get_finished_spans()
    chats = [s for s in finished if s.name.startswith("chat ")]
    assert len(chats) == 4, "three judges plus one retried attempt"
    failed = [c for c in chats if c.status.status_code is StatusCode.ERROR]
    assert len(failed) == 1 and failed[0].attributes["error.type"] == "TransientBackendError"
    retried_agent = next(s for s in finished if s.context.span_id == failed[0].parent.span_id)
    assert retried_agent.status.status_code is not StatusCode.ERROR, "the retry succeeded"
    siblings = [c for c in chats if c.parent.span_id == retried_agent.context.span_id]
    assert len(siblings) == 2
    ok = next(c for c in siblings if c.status.status_code is not StatusCode.ERROR)
    assert retried_agent.attributes["gen_ai.usage.output_tokens"] == ok.attributes["gen_ai.usage.output_tokens"]
    assert retried_agent.attributes["agentkit.llm.calls"] == 1


class _Count(BaseModel):
    x: int
    note: str = ""


def test_function_node_error_is_recorded_on_its_span(spans: InMemorySpanExporter) -> None:
    def boom(state: _Count) -> dict[str, Any]:
        raise ValueError("x must be positive")

    g = Graph("fails", _Count)
    g.add_node("check", boom, reads=["x"], writes=["note"])
    g.add_edge(START, "check")
    g.add_edge("check", END)
    with pytest.raises(ValueError):
        g.compile().invoke({"x": -1})
    by_name = {s.name: s for s in spans.get_finished_spans()}
    node = by_name["node check"]
    assert node.status.status_code is StatusCode.ERROR and node.attributes["error.type"] == "ValueError"
    assert node.status.description == "x must be positive"
    assert by_name["invoke_workflow fails"].status.status_code is StatusCode.ERROR


# --------------------------------------------------------------------------------- concurrency
async def test_concurrent_runs_with_parallel_branches_never_cross_parents(
    replay, spans: InMemorySpanExporter, monkeypatch
) -> None:
    monkeypatch.setenv(tracing.ENV_CAPTURE, "true")  # lets each chat span be matched to its run's question
    backend = Recording(replay("panel"), delay_s=0.05)
    graph = panel_graph().compile(backend=backend)
    outs = await graph.abatch([{"question": q} for q in QUESTIONS], concurrency=3)
    assert len(outs) == len(QUESTIONS)
    assert backend.max_in_flight > 3, "runs must overlap for this test to mean anything"
    finished = spans.get_finished_spans()
    by_id = {s.context.span_id: s for s in finished}
    roots = [s for s in finished if s.parent is None]
    assert sorted(json.loads(r.attributes["input.value"])["question"] for r in roots) == sorted(QUESTIONS)
    assert len({r.context.trace_id for r in roots}) == len(QUESTIONS), "every run is its own trace"

    def root_of(s: ReadableSpan) -> ReadableSpan:
        while s.parent is not None:
            parent = by_id[s.parent.span_id]
            assert parent.context.trace_id == s.context.trace_id, f"{s.name} crossed into another trace"
            s = parent
        return s

    for root in roots:
        run = [s for s in finished if s.context.trace_id == root.context.trace_id]
        assert all(root_of(s) is root for s in run)
        assert span_tree(run) == _canonical(("invoke_workflow panel", (
            ("invoke_agent deductive", (("chat", ()),)),
            ("invoke_agent logical", (("chat", ()),)),
            ("invoke_agent robust", (("chat", ()),)),
            ("node aggregate", ()),
            ("node decide", ()),
        )))
        check_conventions(run, content=True)
        question = json.loads(root.attributes["input.value"])["question"]
        for chat in (s for s in run if s.name.startswith("chat ")):
            parent = by_id[chat.parent.span_id]
            assert chat.attributes["gen_ai.agent.name"] == parent.attributes["gen_ai.agent.name"]
            assert question in chat.attributes["gen_ai.input.messages"], "a chat span landed in another run"


# ------------------------------------------------------------------------------ annotate hooks
def test_annotate_sets_attributes_on_the_node_span(spans: InMemorySpanExporter) -> None:
    def note(state: _Count) -> dict[str, Any]:
        tracing.annotate({"agentkit.cascade.tier": 2, "agentkit.detail": {"a": 1}, "agentkit.skip": None},
                         mixed=[1, "a"], same=["x", "y"])
        return {"note": "done"}

    g = Graph("annotated", _Count)
    g.add_node("note", note, reads=["x"], writes=["note"])
    g.add_edge(START, "note")
    g.add_edge("note", END)
    g.compile().invoke({"x": 1})
    attrs = next(s for s in spans.get_finished_spans() if s.name == "node note").attributes
    assert attrs[tracing.CASCADE_TIER] == 2
    assert json.loads(attrs["agentkit.detail"]) == {"a": 1}
    assert "agentkit.skip" not in attrs
    assert json.loads(attrs["mixed"]) == [1, "a"] and list(attrs["same"]) == ["x", "y"]


class _Votes(BaseModel):
    x: int
    votes: Tally = Tally()
    other: Tally = Tally()


def test_tallies_a_node_writes_are_recorded_without_overriding_its_own_facts(spans: InMemorySpanExporter) -> None:
    def vote(state: _Votes) -> dict[str, Any]:
        tracing.annotate_vote({"a": 2, "b": 1}, samples=4)  # one of four samples abstained
        return {"votes": Tally(counts={"a": 2, "b": 1})}

    def two(state: _Votes) -> dict[str, Any]:
        return {"votes": Tally(counts={"x": 1}), "other": Tally(counts={"y": 2, "z": 2})}

    g = Graph("tallies", _Votes)
    g.add_node("vote", vote, reads=["x"], writes=["votes"])
    g.add_node("two", two, reads=["votes"], writes=["votes", "other"])
    g.add_edge(START, "vote")
    g.add_edge("vote", "two")
    g.add_edge("two", END)
    g.compile().invoke({"x": 1})
    by_name = {s.name: s.attributes for s in spans.get_finished_spans()}
    assert by_name["node vote"][tracing.VOTE_AGREEMENT] == pytest.approx(2 / 4), "the node's own figure stays"
    assert by_name["node vote"][tracing.VOTE_SAMPLES] == 4
    two_attrs = by_name["node two"]
    assert json.loads(two_attrs["agentkit.vote.other.counts"]) == {"y": 2, "z": 2}
    assert two_attrs["agentkit.vote.other.winner"] == "y" and two_attrs["agentkit.vote.votes.total"] == 1
    assert tracing.VOTE_COUNTS not in two_attrs


def test_annotate_vote_counts_abstentions_against_agreement(spans: InMemorySpanExporter) -> None:
    with tracing.span("node vote"):
        tracing.annotate_vote({"12": 2, "7": 2, "9": 1}, samples=6)
    attrs = spans.get_finished_spans()[0].attributes
    assert attrs[tracing.VOTE_WINNER] == "12", "ties go to the first answer, as Tally.winner does"
    assert attrs[tracing.VOTE_TOTAL] == 5
    assert attrs[tracing.VOTE_AGREEMENT] == pytest.approx(2 / 6)


def test_grammar_cache_puts_compile_time_on_the_current_span(spans: InMemorySpanExporter) -> None:
    cache: GrammarCache[object] = GrammarCache()
    constraint = OutputConstraint(kind="regex", value="[0-9]+")
    with tracing.span("chat first"):
        cache.get(constraint, "tok", lambda: sum(range(100_000)))
    with tracing.span("chat second"):
        cache.get(constraint, "tok", lambda: pytest.fail("a cached grammar must not compile again"))
    first, second = spans.get_finished_spans()
    assert first.attributes[tracing.GRAMMAR_CACHE_HIT] is False and first.attributes[tracing.GRAMMAR_COMPILE_MS] > 0
    assert second.attributes[tracing.GRAMMAR_CACHE_HIT] is True and second.attributes[tracing.GRAMMAR_COMPILE_MS] == 0


def test_trace_headers_name_the_current_span(spans: InMemorySpanExporter) -> None:
    with tracing.span("chat m") as s:
        headers = tracing.trace_headers()
    ctx = s.get_span_context()
    version, trace_id, span_id, flags = headers["traceparent"].split("-")
    assert (version, trace_id, span_id) == ("00", f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}")
    assert int(flags, 16) & 1, "sampled"


# ------------------------------------------------------------------------------ no-op fast path
def test_without_a_provider_every_helper_is_the_shared_noop() -> None:
    assert not tracing.enabled(), "a test installed a global tracer provider; configure() belongs in a subprocess"
    noop = tracing._DISABLED
    assert tracing.span("x") is noop
    assert tracing.workflow_span("g", {"question": "q"}) is noop
    assert tracing.agent_span("a") is noop
    assert tracing.node_span("n", "function") is noop
    assert tracing.tool_span("t") is noop
    assert tracing.trace_headers() == {}
    tracing.annotate({"agentkit.x": 1})  # nothing to annotate: must not raise
    tracing.annotate_vote({"1": 1})


def test_annotate_outside_any_span_is_harmless(spans: InMemorySpanExporter) -> None:
    tracing.annotate({"agentkit.x": 1})
    assert spans.get_finished_spans() == ()

