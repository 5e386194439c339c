"""The summary of a call covers exactly the examples that call selected, and results carry clusters.

A toy pattern that needs no model answers each question's last word, so the right and wrong answers
are known in advance.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from agentkit.eval.runner import EvalDataset, evaluate
from agentkit.graph import END, START, Graph
from agentkit.pattern import Pattern, checked_knobs
from agentkit.vocab import Example, Question


class Said(BaseModel):
    question: str
    answer: str | None = None


@checked_knobs
def build_last_word(backend: object = None) -> Graph[Said]:
    graph = Graph("last-word", Said, inputs=["question"])
    graph.add_node("say", lambda s: {"answer": s.question.split()[-1]}, reads=["question"], writes=["answer"])
    graph.add_edge(START, "say")
    graph.add_edge("say", END)
    return graph


LAST_WORD = Pattern("toy-last-word", build_last_word, Question,
                    input_from=lambda e: Question(question=e.fields["question"]), prediction=lambda out: out.answer,
                    summarize=lambda rows: {"rows_seen": len(rows)})

#: e0..e5; the answer is right for e0, e2, e3 (the last word is the label) and wrong for the others
ROWS = [("yes", "yes"), ("no", "yes"), ("no", "no"), ("yes", "yes"), ("yes", "no"), ("no", "yes")]


def _data(limit: int) -> EvalDataset:
    examples = [Example(id=f"e{i}", fields={"question": f"say {said}", "group": f"q{i // 2}"}, label=gold)
                for i, (gold, said) in enumerate(ROWS[:limit])]
    return EvalDataset(name="toy-yes-no", examples=examples, answer_kind="label", labels=["no", "yes"],
                       cluster_key="group")


class NoModel:
    provider = "none"
    model = "none"


def test_resume_with_a_smaller_limit_summarises_only_the_selected(tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = evaluate(LAST_WORD, _data(5), NoModel(), out)
    assert first.summary.n == 5 and first.summary.correct == 3
    again = evaluate(LAST_WORD, _data(3), NoModel(), out, resume=True)
    assert (again.skipped, again.finished) == (3, 0)
    # e0..e2 only, though the directory holds five results: right on e0 and e2
    assert again.summary.n == 3 and again.summary.correct == 2
    assert json.loads((out / "summary.json").read_text(encoding="utf-8"))["n"] == 3
    assert again.summary.pattern_metrics == {"rows_seen": 3}  # the pattern's hook sees the same rows
    assert again.summary.confusion == {"no": {"no": 1, "yes": 1}, "yes": {"yes": 1}}  # e1: gold no, said yes
    assert len((out / "results.jsonl").read_text(encoding="utf-8").splitlines()) == 5  # nothing lost


def test_resume_with_a_larger_limit_still_counts_earlier_results(tmp_path: Path) -> None:
    out = tmp_path / "run"
    evaluate(LAST_WORD, _data(2), NoModel(), out)
    grown = evaluate(LAST_WORD, _data(4), NoModel(), out, resume=True)
    assert (grown.skipped, grown.finished) == (2, 2)
    assert grown.summary.n == 4 and grown.summary.correct == 3


def test_results_record_their_cluster_and_the_summary_resamples_by_it(tmp_path: Path) -> None:
    out = tmp_path / "run"
    outcome = evaluate(LAST_WORD, _data(6), NoModel(), out)
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {line["id"]: line["cluster"] for line in lines} == {f"e{i}": f"q{i // 2}" for i in range(6)}
    assert outcome.summary.n_clusters == 3


def test_old_result_lines_without_a_cluster_get_it_from_the_dataset(tmp_path: Path) -> None:
    out = tmp_path / "run"
    evaluate(LAST_WORD, _data(4), NoModel(), out)
    path = out / "results.jsonl"
    stripped = [{k: v for k, v in json.loads(line).items() if k != "cluster"}
                for line in path.read_text(encoding="utf-8").splitlines()]
    path.write_text("".join(json.dumps(row) + "\n" for row in stripped), encoding="utf-8")
    resumed = evaluate(LAST_WORD, _data(4), NoModel(), out, resume=True)
    assert resumed.summary.n_clusters == 2
