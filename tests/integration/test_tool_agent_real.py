"""ToolAgent on the REAL SmolLM2-135M: how often does it call the calculator correctly?

Mechanics are asserted exactly (every turn is a registered action with well-formed arguments,
every observation is what the tool really returns, every episode ends in an answer or a clean
ToolStepsExhausted). Accuracy is measured and printed (run with -s), with a floor only on the
easy hand-written set, where greedy SmolLM2 was measured at 8/12 correct calls (12/12 called it).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from agentkit import Sampling
from agentkit.eval.datasets import load_dataset
from agentkit.tool_use import FINAL_ACTION, ToolAgent, ToolExample, ToolStepsExhausted
from agentkit.tools import RetrievalIndex, calculator, retrieval_tool
from agentkit.verifiers.answer import answers_match
from tests.integration.test_retrieval_real import _premises as folio_premises
from tests.unit.test_tool_use import CALC_SHOTS, Question, Short, calc_agent

pytestmark = pytest.mark.integration

# Easy one- or two-operation word problems, written for this test (none is in the worked examples).
EASY = [
    ("What is 12 + 30?", "42"),
    ("What is 15 times 4?", "60"),
    ("Sara buys 7 pencils at 3 dollars each. How much does she pay?", "21"),
    ("A book has 120 pages. Ann reads 45 pages. How many pages are left?", "75"),
    ("There are 24 cookies shared equally by 6 kids. How many cookies does each kid get?", "4"),
    ("A farmer has 3 pens with 4 sheep in each pen. How many sheep are there in total?", "12"),
    ("Ben has 9 marbles and finds 14 more. How many marbles does he have?", "23"),
    ("A box holds 8 eggs. How many eggs are in 5 boxes?", "40"),
    ("Lily had 100 dollars and spent 37 dollars. How much money does she have left?", "63"),
    ("72 students are split into 8 equal teams. How many students are in each team?", "9"),
    ("A train travels 60 miles each hour for 3 hours. How far does it go?", "180"),
    ("Tim has 5 bags with 6 oranges in each bag. He gives away 4 oranges. How many oranges are left?", "26"),
]


@dataclass
class Episode:
    question: str
    gold: str
    answer: str | None
    expressions: list[str]
    values: list[str]
    tool_errors: int
    exhausted: bool


def _run(agent: ToolAgent, backend, question: str, gold: str) -> Episode:
    try:
        result = asyncio.run(agent.arun(Question(question=question), backend=backend))
        steps, answer, exhausted, errors = result.steps, result.output.answer, False, result.tool_errors
        assert result.tool_calls == sum(s.action == "calculator" for s in steps)
        assert steps[-1].action == FINAL_ACTION and all(s.action == "calculator" for s in steps[:-1])
    except ToolStepsExhausted as exc:
        steps, answer, exhausted = exc.steps, None, True
        errors = sum(s.error is not None for s in steps)
        assert all(s.action == "calculator" for s in steps)
    expressions, values = [], []
    for s in steps:
        if s.action != "calculator":
            continue
        assert set(s.args) == {"expression"}  # type: ignore[arg-type]  # the grammar allows nothing else
        expressions.append(s.args["expression"])  # type: ignore[index]
        if s.error is None:  # the observation is exactly what the calculator returns for that expression
            values.append(calculator(expression=s.args["expression"]))  # type: ignore[index]
            assert s.observation == "Result: " + values[-1]
        else:
            assert s.observation == "Error: " + s.error and s.error.startswith("tool 'calculator' failed")
    return Episode(question, gold, answer, expressions, values, errors, exhausted)


def _figures(name: str, episodes: list[Episode]) -> dict[str, int]:
    n = len(episodes)
    figures = {
        "episodes": n,
        "called_calculator": sum(bool(e.expressions) for e in episodes),
        "correct_call": sum(any(answers_match(v.split(" ")[0], e.gold, "number") for v in e.values) for e in episodes),
        "tool_errors": sum(e.tool_errors for e in episodes),
        "exhausted": sum(e.exhausted for e in episodes),
        "answer_copies_tool": sum(bool(e.values) and e.answer == e.values[-1].split(" ")[0] for e in episodes),
        "correct_answer": sum(e.answer is not None and answers_match(e.answer, e.gold, "number") for e in episodes),
    }
    print(f"\n[{name}] " + ", ".join(f"{k}={v}" for k, v in figures.items()))
    for e in episodes:
        print(f"   gold={e.gold:>6} answer={e.answer!s:>8} calls={e.expressions}")
    return figures


def test_smollm2_uses_the_calculator_on_easy_word_problems(smollm2) -> None:
    agent = calc_agent()
    episodes = [_run(agent, smollm2, q, gold) for q, gold in EASY]
    figures = _figures("easy", episodes)
    assert figures["called_calculator"] >= 10
    assert figures["correct_call"] >= 6  # measured 8/12 when written; the floor leaves room for build drift
    assert figures["correct_answer"] >= figures["correct_call"] - 2


def test_smollm2_with_the_calculator_on_gsm8k(smollm2) -> None:
    """Real GSM8K questions are multi-step; a 135M model mostly fails them. Reported, not floored."""
    agent = calc_agent(sampling=Sampling(max_tokens=120))
    data = load_dataset("gsm8k", limit=6)
    episodes = [_run(agent, smollm2, e.fields["question"], e.label) for e in data]
    figures = _figures("gsm8k", episodes)
    assert figures["episodes"] == 6 and figures["exhausted"] + sum(e.answer is not None for e in episodes) == 6


def test_smollm2_searches_folio_premises_with_minilm_before_answering(smollm2) -> None:
    search = retrieval_tool(RetrievalIndex.from_documents(folio_premises()))  # 50 premises, the real MiniLM
    shot = ToolExample(
        input=Question(question="Who created the game the Legend of Zelda?"),
        calls=[("search", {"query": "who created the Legend of Zelda", "k": 1})],
        output=Short(answer="A Japanese game company"),
    )
    agent = ToolAgent(
        "reader",
        instructions="Answer the question. Search the documents first.",
        tools=[search],
        input_type=Question,
        output_type=Short,
        examples=[shot],
        max_steps=3,
        final_on_last_step=True,
        sampling=Sampling(max_tokens=80),
    )
    result = asyncio.run(agent.arun(Question(question="Which city is the capital of China?"), backend=smollm2))
    calls = [s for s in result.steps if s.action == "search"]
    print(f"\n[retrieval] steps={[s.reply for s in result.steps]} answer={result.output.answer!r}")
    assert calls, "SmolLM2 answered without searching"
    assert "Beijing is the capital" in (calls[0].observation or "")  # MiniLM put the right premise in front of it
    assert result.steps[-1].action == FINAL_ACTION and len(result.output.answer) <= 60


def test_worked_examples_are_not_in_the_test_set() -> None:
    shots = {ex.input.question for ex in CALC_SHOTS}  # type: ignore[attr-defined]
    assert shots.isdisjoint(q for q, _ in EASY)
