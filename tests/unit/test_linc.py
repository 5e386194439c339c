"""LINC mechanics: the program grammar and reader, the prover step, the vote, and the full graph on
replayed SmolLM2 generations (tests/cassettes/linc_*.jsonl).

Vote ties and mixed Error/label samples need chosen sample texts, so those tests use ``Scripted``, a
backend that returns hand-written programs in the exact layout the grammar admits; everything it
returns still goes through the agent's validation, the real z3 prover and the vote.
"""

from __future__ import annotations

import asyncio

import lark
import pytest
from pydantic import ValidationError

from agentkit.backends.base import Choice, Generation, GenerationRequest, Usage
from agentkit.errors import InputError, NoValidSample
from agentkit.eval import Example, load_dataset
from agentkit.graphs import get_pattern, linc
from agentkit.verifiers.fol import parse, to_str
from tests.helpers import Recording

HAWKS = linc.LogicProblem(premises=["A hawk never lands.", "Some birds are hawks."], conclusion="All birds land")


def _program(problem: linc.LogicProblem, *formulas: str) -> str:
    return linc._render(problem, linc.FOLProgram(premises_fol=list(formulas[:-1]), conclusion_fol=formulas[-1]))


class Scripted:
    """Returns the given sample texts for every request (finish_reason "stop" unless told)."""

    provider = "scripted"
    model = "scripted"

    def __init__(self, texts: list[str], finish: str = "stop") -> None:
        self.texts = texts
        self.finish = finish
        self.requests: list[GenerationRequest] = []

    async def generate(self, request: GenerationRequest) -> Generation:
        self.requests.append(request)
        choices = [Choice(text=t, finish_reason=self.finish) for t in self.texts[: request.n]]
        return Generation(choices=choices, usage=Usage(input_tokens=10, output_tokens=20), model=self.model)


# The hawk problem under three readings: each gives the prover a different label.
SAYS_FALSE = _program(HAWKS, "∀x (Hawk(x) → ¬Lands(x))", "∃x (Bird(x) ∧ Hawk(x))", "∀x (Bird(x) → Lands(x))")
SAYS_TRUE = _program(HAWKS, "∀x (Bird(x) → Lands(x))", "∃x (Bird(x) ∧ Hawk(x))", "∀x (Bird(x) → Lands(x))")
SAYS_UNCERTAIN = _program(HAWKS, "∀x (Hawk(x) → ¬Lands(x))", "∃x (Bird(x))", "∀x (Bird(x) → Lands(x))")
BROKEN = "TEXT: A hawk never lands.\nFOL: Hawk(x) ∧\n"  # what an unconstrained backend might send


def _run(backend, problem: linc.LogicProblem = HAWKS, **knobs) -> linc.LincResult:
    return asyncio.run(linc.build(backend, **knobs).compile().ainvoke(problem))


# -- the few-shot examples, the grammar and the reader -----------------------------------------------


@pytest.mark.parametrize(("index", "label"), [(0, "True"), (1, "False")])
def test_few_shot_examples_are_canonical_fol_and_prove_as_intended(index: int, label: str) -> None:
    pairs, (conclusion, conclusion_fol) = linc.EXAMPLES[index]
    formulas = [f for _, f in pairs] + [conclusion_fol]
    assert all(to_str(parse(f)) == f for f in formulas)  # the grammar admits canonical prints only
    problem = linc.LogicProblem(premises=[p for p, _ in pairs], conclusion=conclusion)
    text = _program(problem, *formulas)
    lark.Lark(linc.program_grammar(problem), parser="earley").parse(text)
    program = linc.read_program(text, problem)
    assert linc._prove(program, 10.0).label == label


def test_program_grammar_admits_only_the_given_sentences_in_order() -> None:
    parser = lark.Lark(linc.program_grammar(HAWKS), parser="earley")
    parser.parse(SAYS_FALSE)
    for bad in [
        SAYS_FALSE.replace("Some birds are hawks.", "Some birds are eagles."),  # a changed sentence
        SAYS_FALSE.rsplit("\nTEXT: All birds land", 1)[0],  # the conclusion left out
        SAYS_FALSE.replace("∀x (Hawk(x) → ¬Lands(x))", "∀x Hawk(x) → ¬Lands(x)"),  # not canonical FOL
        SAYS_FALSE + "\n",  # nothing may follow the conclusion's formula
    ]:
        with pytest.raises(lark.exceptions.LarkError):
            parser.parse(bad)


def test_sentences_with_quotes_and_backslashes_stay_literal_in_the_grammar() -> None:
    problem = linc.LogicProblem(premises=['Ann said "hi" \\ left.', "Bob’s cat purrs."], conclusion="Ann left.")
    text = _program(problem, "Said(ann, hi)", "Purrs(bobscat)", "Left(ann)")
    lark.Lark(linc.program_grammar(problem), parser="earley").parse(text)
    assert linc.read_program(text, problem).premises_fol == ["Said(ann, hi)", "Purrs(bobscat)"]


def test_read_program_names_what_is_wrong() -> None:
    with pytest.raises(InputError, match=r"expected 'TEXT: A hawk never lands.\\nFOL: ' at position 0"):
        linc.read_program("FOL: Hawk(x)", HAWKS)
    with pytest.raises(InputError, match="FOL for premise 2:"):
        linc.read_program(SAYS_FALSE.replace("∃x (Bird(x) ∧ Hawk(x))", "∃x (Bird(x) ∧"), HAWKS)
    with pytest.raises(InputError, match="unexpected text after the conclusion"):
        linc.read_program(SAYS_FALSE + "\nTEXT: extra", HAWKS)


def test_logic_problem_validation() -> None:
    p = linc.LogicProblem(premises=["  All   cats\nare mammals. "], conclusion="Tom\tis a cat.")
    assert p.premises == ["All cats are mammals."] and p.conclusion == "Tom is a cat."
    with pytest.raises(ValidationError, match="premises"):
        linc.LogicProblem(premises=[], conclusion="x")
    with pytest.raises(ValidationError, match=r"premises\[1\] is empty"):
        linc.LogicProblem(premises=["A cat.", "   "], conclusion="x")
    with pytest.raises(ValidationError, match="conclusion contains control characters"):
        linc.LogicProblem(premises=["A cat."], conclusion="x\x00y")


# -- the graph on replayed real generations -------------------------------------------------------


def test_linc_on_replayed_smollm2_keeps_every_sample(replay) -> None:
    backend = Recording(replay("linc_hawks_k4"))
    out = _run(backend, k=4, seed=7)
    assert len(backend.requests) == 1  # K samples are ONE request
    request = backend.requests[0]
    assert request.n == 4 and request.sampling.temperature == 0.8
    assert request.constraint is not None and request.constraint.kind == "grammar"
    assert '"TEXT: A hawk never lands.\\nFOL: " formula' in request.constraint.value
    assert out.invalid_samples == [] and len(out.programs) == len(out.samples) == 4
    for program, sample in zip(out.programs, out.samples, strict=True):
        assert sample.premises_fol == program.premises_fol and len(program.premises_fol) == 2
        assert sample.conclusion_fol == program.conclusion_fol
        assert all(to_str(parse(f)) == f for f in [*program.premises_fol, program.conclusion_fol])
        assert sample.label in ("True", "False", "Uncertain")  # guided decoding: the prover took every one
    assert out.error_count == 0 and out.votes.total == 4
    assert out.answer == out.votes.winner and out.agreement == out.votes.counts[out.answer] / 4


def test_all_samples_cut_at_max_tokens_give_no_answer_with_error_count_k(replay) -> None:
    out = _run(replay("linc_hawks_truncated"), k=3, seed=7, max_tokens=12)
    assert out.programs == [] and len(out.invalid_samples) == 3
    assert all("stopped at max_tokens" in v for v in out.invalid_samples)
    assert [s.label for s in out.samples] == ["Error"] * 3
    assert all(s.premises_fol is None for s in out.samples)
    assert out.answer is None and out.error_count == 3 and out.votes.total == 0 and out.agreement == 0.0


# -- the vote, on chosen samples ----------------------------------------------------------------------


def test_each_reading_gets_its_prover_label() -> None:
    out = _run(Scripted([SAYS_FALSE, SAYS_TRUE, SAYS_UNCERTAIN]), k=3)
    assert [s.label for s in out.samples] == ["False", "True", "Uncertain"]
    assert out.samples[0].premises_fol == ["∀x (Hawk(x) → ¬Lands(x))", "∃x (Bird(x) ∧ Hawk(x))"]


def test_a_tie_goes_to_the_earliest_sample() -> None:
    out = _run(Scripted([SAYS_TRUE, SAYS_FALSE, SAYS_FALSE, SAYS_TRUE]), k=4)
    assert out.votes.counts == {"True": 2, "False": 2}
    assert out.answer == "True" and out.agreement == 0.5
    out = _run(Scripted([SAYS_FALSE, SAYS_TRUE, SAYS_TRUE, SAYS_FALSE]), k=4)
    assert out.answer == "False"


def test_errors_do_not_vote_but_count_against_agreement() -> None:
    out = _run(Scripted([BROKEN, SAYS_UNCERTAIN, BROKEN, SAYS_TRUE, SAYS_TRUE]), k=5)
    assert out.error_count == 2 and len(out.invalid_samples) == 2
    assert out.votes.counts == {"Uncertain": 1, "True": 2}
    assert out.answer == "True" and out.agreement == 2 / 5
    errors = [s for s in out.samples if s.label == "Error"]
    assert len(errors) == 2 and all("FOL for premise 1" in s.reason for s in errors)


def test_all_samples_invalid_is_no_answer_not_an_exception() -> None:
    out = _run(Scripted([BROKEN] * 3), k=3)  # the graph finishes; only the eval hook refuses to answer
    assert out.answer is None and out.error_count == 3 and out.votes.counts == {}
    with pytest.raises(NoValidSample, match="all 3 LINC samples failed"):
        linc.prediction(out)
    assert linc.extras(out)["prover_success_rate"] == 0.0


def test_undecided_prover_is_an_error_vote(monkeypatch: pytest.MonkeyPatch) -> None:
    from agentkit.verifiers.fol import FOLResult

    def gave_up(premises, conclusion, timeout_s):
        return FOLResult(label="Uncertain", reason="timeout after 0.1s", timed_out=True, conclusive=False)

    monkeypatch.setattr(linc.checking, "check", gave_up)
    out = _run(Scripted([SAYS_TRUE, SAYS_FALSE]), k=2, timeout_s=0.1)
    assert [s.label for s in out.samples] == ["Error", "Error"]
    assert "could not decide: timeout" in out.samples[0].reason and out.answer is None


# -- registry and evaluation hooks -------------------------------------------------------------------


def test_registered_for_the_cli_and_eval() -> None:
    spec = get_pattern("linc")
    assert spec is linc.PATTERN and spec.input_type is linc.LogicProblem and spec.samples_knob == "k"
    assert spec.build is linc.build and spec.summarize is linc.summarize


@pytest.mark.parametrize("dataset", ["folio", "proofwriter"])
def test_input_from_dataset_rows(dataset: str) -> None:
    example = load_dataset(dataset, limit=1)[0]
    problem = linc.input_from(example)
    assert problem.premises == [" ".join(p.split()) for p in example.fields["premises"]]
    assert problem.conclusion == " ".join(example.fields["conclusion"].split())
    assert example.label in ("True", "False", "Uncertain")


def test_input_from_names_the_example_when_fields_are_missing() -> None:
    with pytest.raises(InputError, match="example 'q1': LINC needs a 'premises' list"):
        linc.input_from(Example(id="q1", fields={"question": "Is it?"}, label="True"))
    with pytest.raises(InputError, match=r"example 'q2': .*premises\[0\] is empty"):
        linc.input_from(Example(id="q2", fields={"premises": [" "], "conclusion": "c"}, label="True"))


def test_cli_rejects_a_bare_question_before_loading_a_model() -> None:
    from typer.testing import CliRunner

    from agentkit.cli import app

    r = CliRunner().invoke(app, ["run", "linc", "--question", "Is Socrates mortal?"])
    assert r.exit_code == 2
    assert "this pattern takes --input JSON with fields: premises, conclusion" in r.output


class GoldParser:
    """An oracle semantic parser: answers each LINC request with FOLIO's own gold FOL for that problem."""

    provider = "oracle"
    model = "folio-gold"

    def __init__(self, examples: list[Example]) -> None:
        self.rows = {linc._prompt(linc.input_from(e)): e for e in examples}

    async def generate(self, request: GenerationRequest) -> Generation:
        row = self.rows[request.messages[-1].content]
        gold = linc.FOLProgram(premises_fol=row.fields["premises_fol"], conclusion_fol=row.fields["conclusion_fol"])
        text = linc._render(linc.input_from(row), gold)
        return Generation(choices=[Choice(text=text)] * request.n, usage=Usage(input_tokens=1, output_tokens=1))


def test_eval_harness_scores_linc_with_gold_translations(tmp_path) -> None:
    import json

    from agentkit.eval.runner import aevaluate, select_dataset
    from agentkit.verifiers.fol import FOLSyntaxError, entails

    data = select_dataset("folio", limit=6)
    outcome = asyncio.run(aevaluate("linc", data, GoldParser(data.examples), tmp_path / "run", knobs={"k": 2}))
    results = {r["id"]: r for r in map(json.loads, (tmp_path / "run" / "results.jsonl").read_text().splitlines())}
    for example in data.examples:
        try:
            expected = entails(example.fields["premises_fol"], example.fields["conclusion_fol"])
        except FOLSyntaxError:
            expected = None  # a malformed gold program: both samples are Errors, so no answer
        assert results[example.id]["prediction"] == expected
        assert results[example.id]["correct"] == (expected == example.label)
        assert results[example.id]["error_type"] == (None if expected else "NoValidSample")
    assert outcome.summary.n == 6 and outcome.summary.errors == 1  # folio-val-0002's conclusion FOL is malformed


# -- evaluation: the harness reports LINC's prover success rate ---------------------------------------


@pytest.mark.parametrize(("cassette", "knobs", "rate", "degenerate"), [
    ("linc_hawks_k4", {"k": 4, "seed": 7}, 1.0, 0.75),   # every sample decided; 3 of 4 copy the conclusion
    ("linc_hawks_truncated", {"k": 3, "seed": 7, "max_tokens": 12}, 0.0, 0.0),  # every sample cut short
])
def test_eval_summary_reports_the_prover_success_rate(replay, tmp_path, cassette, knobs, rate, degenerate) -> None:
    import json

    from agentkit.eval.runner import evaluate, select_dataset

    rows = tmp_path / "hawks.jsonl"
    rows.write_text(json.dumps({"id": "hawks", "premises": HAWKS.premises, "conclusion": HAWKS.conclusion,
                                "label": "False"}) + "\n", encoding="utf-8")
    outcome = evaluate("linc", select_dataset(rows), replay(cassette), tmp_path / "run", knobs=knobs)
    assert outcome.complete
    assert outcome.summary.pattern_metrics == {"prover_success_rate": rate, "inconsistent_rate": 0.0,
                                               "degenerate_rate": degenerate, "calls_per_example": 1.0}
    (line,) = (tmp_path / "run" / "results.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["extra"]["prover_success_rate"] == rate
