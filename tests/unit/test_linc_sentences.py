"""LINC's per-sentence variant and the degenerate checks in the graph, on a scripted backend.

``Parser`` answers like a model would under each request's own grammar: the vocabulary request gets
the scripted vocabularies, each sentence request a formula from a table keyed by (vocabulary, sentence).
Every reply is parsed with the request's grammar (lark), so a test fails if the runtime sent a sample
a grammar that does not admit what that sample's vocabulary declared.
"""

from __future__ import annotations

import asyncio
import functools
import json

import lark
import pytest

from agentkit.backends.base import Choice, Generation, GenerationRequest, Usage
from agentkit.errors import ConfigError
from agentkit.graphs import get_pattern, linc
from agentkit.graphs._linc_grounding import read_vocabulary

HAWKS = linc.LogicProblem(premises=["A hawk never lands.", "Some birds are hawks."], conclusion="All birds land.")
V_GOOD = "PREDICATES: Hawk(1), Lands(1), Birds(1)\nCONSTANTS: none"
V_OTHER = "PREDICATES: Hawk(1), Lands(1), Bird(1)\nCONSTANTS: none"
GOOD = {"A hawk never lands.": "∀x (Hawk(x) → ¬Lands(x))", "Some birds are hawks.": "∃x (Birds(x) ∧ Hawk(x))",
        "All birds land.": "∀x (Birds(x) → Lands(x))"}  # premises ⊨ ¬conclusion: "False"
COPY = {**{k: v.replace("Birds", "Bird") for k, v in GOOD.items()},
        "A hawk never lands.": "∀x (Bird(x) → Lands(x))"}  # the first premise is the conclusion: "True"


class Parser:
    provider = "scripted"
    model = "scripted"

    def __init__(self, vocabularies: list[str], formulas: dict[str, dict[str, str]]) -> None:
        self.vocabularies = vocabularies
        self.formulas = formulas  # vocabulary text -> sentence -> formula
        self.requests: list[GenerationRequest] = []

    async def generate(self, request: GenerationRequest) -> Generation:
        self.requests.append(request)
        grammar = _lark(request.constraint.value)
        last = request.messages[-1].content
        if last.startswith("PREMISES:"):
            texts = self.vocabularies[: request.n]
        else:
            head, _, sentence = last.rpartition("\nTEXT: ")
            vocabulary = head.removeprefix("VOCABULARY:\n")
            texts = [self.formulas[vocabulary][sentence]] * request.n
        for text in texts:
            grammar.parse(text)  # the request's own grammar admits the reply
        return Generation(choices=[Choice(text=t, finish_reason="stop") for t in texts],
                          usage=Usage(input_tokens=10, output_tokens=5), model=self.model)


@functools.cache
def _lark(grammar: str) -> lark.Lark:
    return lark.Lark(grammar, parser="earley")


def _run(backend, **knobs) -> linc.LincResult:
    knobs = {"translation": "sentence", "max_depth": 2, "max_width": 2, **knobs}  # small grammars: quick to build
    return asyncio.run(linc.build(backend, **knobs).compile().ainvoke(HAWKS))


def test_vocabulary_once_then_one_request_per_sentence_and_distinct_vocabulary() -> None:
    backend = Parser([V_GOOD, V_OTHER, V_GOOD], {V_GOOD: GOOD, V_OTHER: COPY})
    out = _run(backend, k=3)
    assert [r.n for r in backend.requests[:1]] == [3]  # the vocabulary: one request, n=K
    sentence_requests = backend.requests[1:]
    assert len(sentence_requests) == 3 * 2 and sorted(r.n for r in sentence_requests) == [1, 1, 1, 2, 2, 2]
    assert out.calls == 1 + 3 * 2 == len(backend.requests)
    # sample i used vocabulary i: the programs are assembled per sample, and voted as in paper mode
    assert [s.label for s in out.samples] == ["False", "True", "False"]
    assert out.answer == "False" and out.votes.counts == {"False": 2, "True": 1}
    assert [s.findings for s in out.samples] == [[], ["conclusion_in_premises"], []]
    assert out.degenerate_count == 1
    # each sentence grammar admits exactly its vocabulary
    grammar = next(r.constraint.value for r in sentence_requests if r.n == 1)
    assert '"Bird("' in grammar and '"Birds("' not in grammar


def test_checks_refuse_the_degenerate_sample_and_record_why(spans) -> None:
    backend = Parser([V_GOOD, V_OTHER, V_OTHER], {V_GOOD: GOOD, V_OTHER: COPY})
    out = _run(backend, k=3, checks=True)
    assert [s.label for s in out.samples] == ["False", "Error", "Error"]
    assert out.samples[1].refused == ["conclusion_in_premises"] and "the prover said True" in out.samples[1].reason
    assert out.answer == "False"  # without the checks the copies would have voted True, 2 to 1
    assert _run(Parser([V_GOOD, V_OTHER, V_OTHER], {V_GOOD: GOOD, V_OTHER: COPY}), k=3).answer == "True"
    extra = linc.extras(out)
    assert extra["invalid"] == {"conclusion_in_premises": 2} and extra["degenerate_rate"] == pytest.approx(2 / 3)
    assert extra["prover_success_rate"] == 1.0  # refused samples were decided: the checks, not the prover, refused
    assert extra["sample_findings"] == [[], ["conclusion_in_premises"], ["conclusion_in_premises"]]
    assert extra["calls"] == 1 + 3 * 2 and extra["grounding"] == "open"
    node = next(s for s in spans.get_finished_spans() if s.name == "node symbolic_inference")
    assert node.attributes["agentkit.linc.invalid.conclusion_in_premises"] == 2
    assert node.attributes["agentkit.linc.found.conclusion_in_premises"] == 2
    events = [e for e in node.events if e.name == "agentkit.linc.invalid.conclusion_in_premises"]
    assert [e.attributes["agentkit.linc.sample"] for e in events] == [1, 2]


INCONSISTENT = {**GOOD, "Some birds are hawks.": "∃x (Hawk(x) ∧ Lands(x))"}  # contradicts premise 1


@pytest.mark.parametrize(("knobs", "label"), [
    ({}, "Error"),                                                  # the per-sentence default refuses it
    ({"allow_inconsistent": True}, "True"),                         # the paper's behaviour, on request
])
def test_inconsistent_premises_are_a_failed_sample_in_the_new_variant(knobs, label) -> None:
    out = _run(Parser([V_GOOD], {V_GOOD: INCONSISTENT}), k=1, **knobs)
    (sample,) = out.samples
    assert sample.label == label and sample.findings == ["inconsistent_premises"] and out.inconsistent_count == 1
    assert sample.refused == ([] if label == "True" else ["inconsistent_premises"])


def test_paper_mode_refuses_inconsistent_premises_only_when_asked() -> None:
    from tests.unit.test_linc import Scripted, _program

    text = _program(HAWKS, "∀x (Hawk(x) → ¬Lands(x))", "∃x (Hawk(x) ∧ Lands(x))", "∀x (Bird(x) → Lands(x))")
    paper = asyncio.run(linc.build(Scripted([text]), k=1).compile().ainvoke(HAWKS))
    assert paper.samples[0].label == "True" and paper.calls == 1
    strict = asyncio.run(linc.build(Scripted([text]), k=1, allow_inconsistent=False).compile().ainvoke(HAWKS))
    assert strict.samples[0].label == "Error" and strict.answer is None


def test_grounded_vocabulary_grammar_is_built_from_the_input(spans) -> None:
    backend = Parser([V_GOOD], {V_GOOD: GOOD})
    out = _run(backend, k=1, grounded=True)
    vocabulary_grammar = backend.requests[0].constraint.value
    assert '"Hawk("' in vocabulary_grammar and '"Birds("' in vocabulary_grammar and "/[A-Z]" not in vocabulary_grammar
    assert out.grounding.grounded and out.answer == "False"
    node = next(s for s in spans.get_finished_spans() if s.name == "node ground_names")
    assert node.attributes["agentkit.linc.grounding"] == "input"
    with pytest.raises(lark.exceptions.LarkError):  # a name from no word of the input
        lark.Lark(vocabulary_grammar, parser="earley").parse("PREDICATES: Jumbouses(1)\nCONSTANTS: none")


def test_an_ungroundable_input_runs_on_the_open_grammar_and_the_trace_says_so(spans) -> None:
    problem = linc.LogicProblem(premises=["It is not."], conclusion="If it is, then it is.")
    backend = Parser(["PREDICATES: Is(1)\nCONSTANTS: none"],
                     {"PREDICATES: Is(1)\nCONSTANTS: none": {"It is not.": "∃x (¬Is(x))",
                                                             "If it is, then it is.": "∀x (Is(x) → Is(x))"}})
    out = asyncio.run(linc.build(backend, k=1, translation="sentence", grounded=True, max_depth=2,
                                 max_width=2).compile().ainvoke(problem))
    assert not out.grounding.grounded and out.answer is not None
    node = next(s for s in spans.get_finished_spans() if s.name == "node ground_names")
    assert node.attributes["agentkit.linc.grounding"] == "open"
    assert "no sentence" in node.attributes["agentkit.linc.grounding.fallback"]


def test_a_failed_vocabulary_or_sentence_is_an_error_sample_naming_where() -> None:
    class Cut(Parser):
        async def generate(self, request):
            generation = await super().generate(request)
            if "TEXT: Some birds" in request.messages[-1].content:
                generation.choices[0] = Choice(text="∃x (Birds(x)", finish_reason="length")
            return generation

    cut = Cut([V_GOOD], {V_GOOD: GOOD})
    out = _run(cut, k=1)
    assert out.samples[0].label == "Error" and "premise 2" in out.samples[0].reason and out.answer is None


def test_knobs_are_checked() -> None:
    with pytest.raises(ConfigError, match="translation"):
        linc.build(None, translation="whole")
    with pytest.raises(ConfigError, match="grounded=true needs translation='sentence'"):
        linc.build(None, grounded=True)
    spec = get_pattern("linc")
    assert spec.parse_option("translation=sentence") == ("translation", "sentence")
    assert spec.parse_option("grounded=true") == ("grounded", True)
    assert spec.check_knobs({"translation": "sentence", "grounded": True, "checks": True,
                             "allow_inconsistent": False})


def test_vocabulary_reader_matches_the_parser_layout() -> None:
    assert read_vocabulary(V_GOOD).predicates == [("Hawk", 1), ("Lands", 1), ("Birds", 1)]
    assert json.loads(json.dumps(linc.extras(linc.LincResult(premises=["a"], conclusion="b"))))["calls"] == 0
