"""LINC under the eval harness: a problem whose K samples all fail scores wrong (NoValidSample), not
"Uncertain", and keeps its extras; inconsistent premises are counted per sample, per example and in
``pattern_metrics``. The NoValidSample rule is the runner's, so it is also tested on a toy pattern."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from pydantic import BaseModel

from agentkit.errors import NoValidSample
from agentkit.eval.runner import aevaluate, select_dataset
from agentkit.graph import END, START, Graph
from agentkit.graphs import linc
from agentkit.pattern import Pattern
from agentkit.vocab import Question
from tests.unit.test_linc import (
    BROKEN,
    HAWKS,
    SAYS_FALSE,
    SAYS_TRUE,
    SAYS_UNCERTAIN,
    Scripted,
    _program,
    _run,
)

#: P1 and P2 contradict each other, so the prover proves anything ("True") from them.
INCONSISTENT = _program(HAWKS, "∀x (Hawk(x) → ¬Lands(x))", "∃x (Hawk(x) ∧ Lands(x))", "∀x (Bird(x) → Lands(x))")


def _rows(tmp_path: Path, label: str) -> Path:
    rows = tmp_path / "hawks.jsonl"
    rows.write_text(json.dumps({"id": "hawks", "premises": HAWKS.premises, "conclusion": HAWKS.conclusion,
                                "label": label}) + "\n", encoding="utf-8")
    return rows


def _evaluate(tmp_path: Path, texts: list[str], label: str, k: int):
    data = select_dataset(_rows(tmp_path, label))
    outcome = asyncio.run(aevaluate("linc", data, Scripted(texts), tmp_path / "run", knobs={"k": k}))
    (line,) = (tmp_path / "run" / "results.jsonl").read_text(encoding="utf-8").splitlines()
    return outcome, json.loads(line)


def test_all_samples_failing_scores_wrong_even_when_the_gold_label_is_uncertain(tmp_path: Path) -> None:
    """Before the fix the answer fell back to "Uncertain", which scored this example correct."""
    outcome, result = _evaluate(tmp_path, [BROKEN] * 3, "Uncertain", k=3)
    assert result["prediction"] is None and result["correct"] is False
    assert result["error_type"] == "NoValidSample" and "all 3 LINC samples failed" in result["error"]
    assert result["extra"]["error_count"] == 3 and result["extra"]["prover_success_rate"] == 0.0
    assert outcome.summary.accuracy == 0.0 and outcome.summary.errors == 1
    assert outcome.summary.pattern_metrics["prover_success_rate"] == 0.0  # the failed example still counts


def test_one_decided_sample_is_enough_to_answer(tmp_path: Path) -> None:
    _, result = _evaluate(tmp_path, [BROKEN, BROKEN, SAYS_UNCERTAIN], "Uncertain", k=3)
    assert result["prediction"] == "Uncertain" and result["correct"] is True and result["error"] is None
    assert result["extra"]["prover_success_rate"] == pytest.approx(1 / 3)


def test_inconsistent_premises_are_counted_per_sample_and_example() -> None:
    out = _run(Scripted([INCONSISTENT, SAYS_FALSE, INCONSISTENT, BROKEN]), k=4)
    assert [s.label for s in out.samples] == ["True", "False", "True", "Error"]
    assert [s.premises_consistent for s in out.samples] == [False, True, False, None]
    assert "inconsistent" in out.samples[0].reason
    assert out.inconsistent_count == 2 and out.answer == "True"  # the vote keeps them, as the paper's prover does
    extra = linc.extras(out)
    assert extra["inconsistent_count"] == 2 and extra["inconsistent_rate"] == 0.5
    assert extra["prover_success_rate"] == 0.75


def test_inconsistent_rate_in_pattern_metrics(tmp_path: Path) -> None:
    outcome, result = _evaluate(tmp_path, [INCONSISTENT, SAYS_TRUE, SAYS_TRUE, SAYS_FALSE], "False", k=4)
    assert result["extra"]["inconsistent_rate"] == 0.25
    # SAYS_TRUE's first premise is its conclusion: 2 of the 4 samples are degenerate (counted, not refused)
    assert outcome.summary.pattern_metrics == {"prover_success_rate": 1.0, "inconsistent_rate": 0.25,
                                               "degenerate_rate": 0.5, "calls_per_example": 1.0}


def test_summarize_averages_over_the_examples_that_report() -> None:
    class Line(BaseModel):
        id: str
        prediction: str | None = None
        label: str = "True"
        correct: bool | None = None
        error: str | None = None
        extra: dict = {}

    lines = [Line(id="a", extra={"prover_success_rate": 1.0, "inconsistent_rate": 0.5}),
             Line(id="b", extra={"prover_success_rate": 0.0, "inconsistent_rate": 0.0}),
             Line(id="c")]  # e.g. an example that failed before LINC ran: no figures to average
    assert linc.summarize(lines) == {"prover_success_rate": 0.5, "inconsistent_rate": 0.25,
                                     "degenerate_rate": None, "calls_per_example": None}


# -- the runner's rule, on a toy pattern ----------------------------------------------------------------


class Guess(BaseModel):
    question: str
    answer: str | None = None
    tried: int = 0


def build_guess(backend=None):
    def decide(state: Guess) -> dict[str, object]:
        return {"answer": None if "hard" in state.question else "yes", "tried": 3}

    graph = Graph("guess", Guess, inputs=["question"])
    graph.add_node("decide", decide, reads=["question"], writes=["answer", "tried"])
    graph.add_edge(START, "decide")
    graph.add_edge("decide", END)
    return graph


def _prediction(out: Guess) -> str:
    if out.answer is None:
        raise NoValidSample("every try failed")
    return out.answer


GUESS = Pattern("toy-guess", build_guess, Question, input_from=lambda e: Question(question=e.fields["question"]),
                prediction=_prediction, extras=lambda out: {"tried": out.tried},
                summarize=lambda results: {"tries": sum(r.extra.get("tried", 0) for r in results)})


def test_runner_records_no_valid_sample_as_a_wrong_answer_with_its_extras(tmp_path: Path) -> None:
    rows = tmp_path / "q.jsonl"
    rows.write_text("".join(json.dumps({"id": i, "question": q, "label": "yes"}) + "\n"
                            for i, q in (("easy", "an easy one"), ("hard", "a hard one"))), encoding="utf-8")
    outcome = asyncio.run(aevaluate(GUESS, select_dataset(rows), Scripted([]), tmp_path / "run"))
    results = {r["id"]: r for r in map(json.loads, (tmp_path / "run" / "results.jsonl").read_text().splitlines())}
    assert results["easy"]["correct"] is True and results["easy"]["error_type"] is None
    hard = results["hard"]
    assert hard["prediction"] is None and hard["correct"] is False
    assert (hard["error_type"], hard["error"]) == ("NoValidSample", "every try failed")
    assert hard["extra"]["tried"] == 3  # extras were still read off the output
    assert outcome.complete and outcome.summary.accuracy == 0.5 and outcome.summary.errors == 1
    assert outcome.summary.pattern_metrics == {"tries": 6}
