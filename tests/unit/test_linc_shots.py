"""LINC's paper-mode shots (``shots="folio8"``): each is a real FOLIO-train story whose conclusion FOL
(ours) the prover re-proves against the row's gold label, written in the only spelling the grammar
admits, and the knob puts all eight into the prompt."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import Counter
from pathlib import Path

import lark
import pytest

from agentkit.backends.base import Choice, Generation, GenerationRequest, Usage
from agentkit.errors import ConfigError
from agentkit.graphs import linc
from agentkit.graphs._linc_shots import FOLIO8, FolioShot
from agentkit.verifiers.fol import check, parse, to_str

TRAIN = Path(__file__).resolve().parents[2] / "agentkit" / "eval" / "data" / "folio" / "folio-train.jsonl"
_ROWS = [json.loads(line) for line in TRAIN.read_text(encoding="utf-8").splitlines() if line.strip()]


def _formulas(shot: FolioShot) -> tuple[list[str], str]:
    return [f for _, f in shot.premises], shot.conclusion[1]


@pytest.mark.parametrize("shot", FOLIO8, ids=lambda s: f"row{s.row}-{s.label}")
def test_each_shot_is_proved_to_its_gold_label(shot: FolioShot) -> None:
    premises, conclusion = _formulas(shot)
    result = check(premises, conclusion, timeout_s=10.0)
    assert result.conclusive and result.premises_consistent is True, result.reason
    assert result.label == shot.label


@pytest.mark.parametrize("shot", FOLIO8, ids=lambda s: f"row{s.row}")
def test_each_shot_is_its_folio_train_row(shot: FolioShot) -> None:
    row = _ROWS[shot.row]
    assert (row["story_id"], row["example_id"]) == (shot.story, shot.example)
    assert {"Unknown": "Uncertain"}.get(row["label"], row["label"]) == shot.label
    assert [s for s, _ in shot.premises] == [p.strip() for p in row["premises"]]
    assert [f for _, f in shot.premises] == [to_str(parse(f)) for f in row["premises-FOL"]]  # gold, canonical
    assert shot.conclusion[0] == row["conclusion"].strip()


@pytest.mark.parametrize("shot", FOLIO8, ids=lambda s: f"row{s.row}")
def test_each_shot_is_a_program_the_grammar_admits(shot: FolioShot) -> None:
    """What the model is shown is something it could have written under LINC's default bounds."""
    premises, conclusion = _formulas(shot)
    problem = linc.LogicProblem(premises=[s for s, _ in shot.premises], conclusion=shot.conclusion[0])
    program = linc.FOLProgram(premises_fol=premises, conclusion_fol=conclusion)
    text = linc._render(problem, program)
    lark.Lark(linc.program_grammar(problem), parser="earley").parse(text)
    assert linc.read_program(text, problem) == program


def test_eight_stories_cover_every_label_without_runs() -> None:
    assert len(FOLIO8) == 8 and len({s.story for s in FOLIO8}) == 8
    assert Counter(s.label for s in FOLIO8) == {"True": 3, "False": 3, "Uncertain": 2}
    labels = [s.label for s in FOLIO8]
    assert all(a != b for a, b in itertools.pairwise(labels))


class Capture:
    provider = "capture"
    model = "capture"

    def __init__(self) -> None:
        self.requests: list[GenerationRequest] = []

    async def generate(self, request: GenerationRequest) -> Generation:
        self.requests.append(request)
        return Generation(choices=[Choice(text="no")] * request.n, usage=Usage(input_tokens=1, output_tokens=1))


PROBLEM = linc.LogicProblem(premises=["All cats purr.", "Tom is a cat."], conclusion="Tom purrs.")


def _messages(**knobs: object) -> list:
    backend = Capture()
    asyncio.run(linc.build(backend, k=1, **knobs).compile().ainvoke(PROBLEM))
    return list(backend.requests[0].messages)


def test_shots_knob_puts_the_eight_folio_stories_in_the_prompt() -> None:
    messages = _messages(shots="folio8")
    assert len(messages) == 1 + 2 * 8 + 1  # system, 8 (problem, program) pairs, the problem
    for shot, reply in zip(FOLIO8, messages[2:-1:2], strict=True):
        assert reply.role == "assistant"
        assert reply.content.endswith(f"TEXT: {shot.conclusion[0]}\nFOL: {shot.conclusion[1]}")
        assert all(f"TEXT: {s}\nFOL: {f}" in reply.content for s, f in shot.premises)
    assert len(_messages()) == 1 + 2 * 2 + 1  # the default: our two short problems
    assert len(_messages(shots="folio8", examples=[])) == 2  # your own examples replace the named set


def test_unknown_shot_set_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="knob 'shots'"):
        linc.build(Capture(), shots="folio16")
