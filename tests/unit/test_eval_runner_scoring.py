"""How examples become questions, how predictions are graded, which knobs a dataset sets, and the
baselines on every dataset family (replayed real SmolLM2, tests/cassettes/eval_logic.jsonl)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentkit.errors import ConfigError, InputError
from agentkit.eval import DATASET_NAMES, Example, label_set, load_dataset
from agentkit.eval.datasets import answer_kind
from agentkit.eval.questions import JUDGE_QUESTION, OPTIONS_HINT, question_text
from agentkit.eval.runner import dataset_knobs, evaluate, select_dataset
from agentkit.eval.scoring import grade, is_letter_set
from agentkit.graphs import baselines, mccot, patterns
from agentkit.pattern import Pattern

LETTERS = sorted("ABCDEFG")


@pytest.mark.parametrize(
    ("prediction", "label", "kind", "labels", "expected"),
    [
        ("18", "18", "number", None, True),
        ("$1,018.00", "1018", "number", None, True),
        ("17", "18", "number", None, False),
        (None, "18", "number", None, False),
        ("", "18", "number", None, False),
        ("\\frac{1}{2}", "0.5", "latex", None, True),
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})", "latex", None, True),
        ("true", "True", "label", ["False", "True", "Uncertain"], True),
        ("Unknown", "Uncertain", "label", ["False", "True", "Uncertain"], True),
        ("False", "Uncertain", "label", ["False", "True", "Uncertain"], False),
        ("yes", "correct", "label", ["correct", "incorrect"], True),
        ("incorrect", "correct", "label", ["correct", "incorrect"], False),
        ("B", "B", "label", LETTERS, True),
        ("b", "B", "label", LETTERS, True),
        ("(C)", "C", "label", LETTERS, True),
        ("D) The purple book is the second from the left.", "D", "label", LETTERS, True),
        ("A) The green book is the second from the left.", "D", "label", LETTERS, False),
        ("Paris", "paris", "text", None, True),
    ],
)
def test_grade(prediction, label, kind, labels, expected) -> None:
    assert grade(prediction, label, kind, labels) is expected


def test_letter_sets() -> None:
    assert is_letter_set(LETTERS) and not is_letter_set(["True", "False"]) and not is_letter_set(None)
    assert is_letter_set(label_set("logicaldeduction"))


def test_every_named_dataset_has_an_answer_kind() -> None:
    kinds = {name: answer_kind(name) for name in DATASET_NAMES}
    assert kinds == {"folio": "label", "proofwriter": "label", "prontoqa": "label", "logicaldeduction": "label",
                     "gsm8k": "number", "gsm8k-judge": "label", "math500": "latex", "folio-clean": "label",
                     "proofwriter-360": "label", "gsm8k-easy": "number"}
    with pytest.raises(ConfigError, match="unknown dataset 'nope'.*--answer-kind"):
        answer_kind("nope")


@pytest.mark.parametrize("name", DATASET_NAMES)
def test_question_text_carries_what_the_row_needs(name: str) -> None:
    example = load_dataset(name, limit=1)[0]
    text = question_text(example)
    assert example.fields["question"].strip() in text
    if "context" in example.fields:
        assert text.startswith(example.fields["context"].strip())  # premises first, then the question
    if "options" in example.fields:
        assert all(option in text for option in example.fields["options"]) and text.endswith(OPTIONS_HINT)
    if "candidate" in example.fields:
        assert example.fields["candidate"].strip() in text and text.endswith(JUDGE_QUESTION)
        assert example.fields["reference_solution"] not in text  # the judge must not see the answer key


def test_question_text_rejects_rows_it_cannot_read() -> None:
    with pytest.raises(InputError, match="example 'x' has no 'question' text"):
        question_text(Example(id="x", fields={"prompt": "2+2?"}, label="4"))
    with pytest.raises(InputError, match="field 'options' should be a list"):
        question_text(Example(id="y", fields={"question": "q", "options": "A) a"}, label="A"))


def test_dataset_sets_the_knobs_a_builder_takes() -> None:
    assert dataset_knobs(mccot.PATTERN, select_dataset("gsm8k", limit=1)) == {"answer_kind": "number"}
    assert dataset_knobs(mccot.PATTERN, select_dataset("math500", limit=1)) == {"answer_kind": "latex"}
    assert dataset_knobs(baselines.DIRECT, select_dataset("folio", limit=1)) == {
        "answer_kind": "label", "labels": ["False", "True", "Uncertain"]}

    def no_kind(backend=None, *, k: int = 1):
        raise AssertionError

    toy = Pattern("toy", no_kind, mccot.Question)
    assert dataset_knobs(toy, select_dataset("gsm8k", limit=1)) == {}


def test_every_registered_pattern_can_be_evaluated() -> None:
    """The harness's contract with pattern modules: a builder, input_from and prediction."""
    for name, spec in patterns().items():
        assert spec.name == name and callable(spec.build)
        for hook in ("input_from", "prediction"):
            assert callable(getattr(spec, hook)), f"pattern {name!r} lacks {hook}"


@pytest.mark.parametrize("name", ["folio", "prontoqa", "logicaldeduction", "gsm8k-judge"])
def test_direct_baseline_answers_within_the_label_set(replay, tmp_path: Path, name: str) -> None:
    """Guided decoding over the dataset's labels: the real model's answer is always a label."""
    data = select_dataset(name, limit=2)
    outcome = evaluate("direct", data, replay("eval_logic"), tmp_path / name)
    assert outcome.complete
    rows = [json.loads(line) for line in (tmp_path / name / "results.jsonl").read_text().splitlines()]
    for r in rows:
        assert r["error"] is None and r["prediction"] in data.labels
        assert r["correct"] == (r["prediction"] == r["label"])
    assert outcome.summary.n == 2
