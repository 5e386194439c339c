"""DaSLaM mechanics on replayed real SmolLM2 generations: the paper's step order, separate backends for
decomposer and solver, sub-questions answered in order with the earlier pairs in context, the bound
on sub-questions, and initial vs final answers kept apart."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agentkit.decoding import json_schema_for
from agentkit.errors import ConfigError, InputError
from agentkit.eval import Example, load_dataset
from agentkit.graphs import daslam
from agentkit.verifiers.answer import normalize_answer
from tests.helpers import Recording

PROBLEM = load_dataset("gsm8k", limit=2)[1].fields["question"]  # the robe problem: blue and white fibre


def run(replay, max_subquestions: int):
    solver = Recording(replay("daslam_solver"))
    decomposer = Recording(replay("daslam_decomposer"))
    graph = daslam.build(solver, decomposer, max_subquestions=max_subquestions, answer_kind="number").compile()
    return graph.invoke({"question": PROBLEM}), solver, decomposer


def agent_of(request) -> str:
    """Which step sent a request, read from its own instruction: last in the prompt (prefix-first), or
    the system prompt (instructions-first)."""
    last = request.messages[-1].content
    own = last[last.rindex("\n\n") + 2:] if request.messages[0].content == daslam.SHARED else request.messages[0].content
    for name, instructions in [("final_answer", daslam.SOLVE_WITH_PAIRS), ("sub_solving", daslam.SOLVE_SUBQUESTION),
                               ("initial_attempt", daslam.SOLVE)]:
        if own.startswith(instructions):
            return name
    return "decomposition" if own.startswith(daslam.DECOMPOSE[:40]) else "?"


def test_steps_run_in_the_papers_order_on_their_own_backends(replay) -> None:
    out, solver, decomposer = run(replay, 3)
    n = len(out.subquestions)
    assert [agent_of(r) for r in decomposer.requests] == ["decomposition"]
    assert [agent_of(r) for r in solver.requests] == ["initial_attempt", *["sub_solving"] * n, "final_answer"]
    # the decomposer reads the problem and the solver's initial attempt
    asked = decomposer.requests[0].messages[-1].content
    assert PROBLEM in asked and out.initial.rationale in asked and out.initial.answer in asked


def test_subquestions_are_answered_in_order_with_the_earlier_pairs_in_context(replay) -> None:
    out, solver, _ = run(replay, 3)
    assert len(out.subquestions) >= 2, "this cassette's decomposition has several sub-questions"
    assert [s.subquestion for s in out.steps] == out.subquestions
    asks = [r.messages[-1].content for r in solver.requests if agent_of(r) == "sub_solving"]
    for i, (ask, step) in enumerate(zip(asks, out.steps, strict=True)):
        assert ask.startswith(f"Problem: {PROBLEM}\n")
        assert f"\nSub-question: {step.subquestion}\n\n{daslam.SOLVE_SUBQUESTION}\n" in ask
        for j, earlier in enumerate(out.steps[:i], 1):
            assert f"{j}. Q: {earlier.subquestion}\n   A: {earlier.answer}" in ask
        assert f"{i + 1}. Q:" not in ask, "a later sub-question's answer leaked into the context"
    last = asks[-1]  # pairs appear in the order they were answered
    assert last.index(f"1. Q: {out.steps[0].subquestion}") < last.index(f"2. Q: {out.steps[1].subquestion}")


def test_final_answer_sees_every_pair_and_keeps_the_initial_answer(replay) -> None:
    out, solver, _ = run(replay, 3)
    final_ask = solver.requests[-1].messages[-1].content
    for j, step in enumerate(out.steps, 1):
        assert f"{j}. Q: {step.subquestion}\n   A: {step.answer}" in final_ask
    assert f"Now answer the problem.\n\n{daslam.SOLVE_WITH_PAIRS}\n" in final_ask
    assert out.answer == out.final.answer and out.initial_answer == out.initial.answer
    changed = normalize_answer(out.answer, "number") != normalize_answer(out.initial_answer, "number")
    assert out.changed is changed


def test_the_subquestion_count_is_bounded(replay) -> None:
    out, solver, decomposer = run(replay, 1)
    schema = decomposer.requests[0].constraint.value["properties"]["subquestions"]
    assert (schema["minItems"], schema["maxItems"]) == (1, 1)
    assert schema["items"]["maxLength"] == 160
    assert len(out.subquestions) == len(out.steps) == 1
    assert [agent_of(r) for r in solver.requests] == ["initial_attempt", "sub_solving", "final_answer"]
    assert "at most 1 simpler sub-questions" in decomposer.requests[0].messages[-1].content


def test_a_decomposition_over_the_bound_fails_validation(replay) -> None:
    """The bound is in the validated type, not only in the grammar the backend was given."""
    _, _, decomposer = run(replay, 1)
    bounded = daslam.decomposition_type(1)
    assert decomposer.requests[0].constraint.value == json_schema_for(bounded)
    with pytest.raises(ValidationError, match="at most 1 item"):
        bounded.model_validate_json('{"subquestions":["How many blue?","How many in total?"]}')
    with pytest.raises(ValidationError, match="at least 1 item"):
        bounded.model_validate_json('{"subquestions":[]}')
    with pytest.raises(ValidationError, match="at most 160 characters"):
        bounded.model_validate_json('{"subquestions":["' + "x" * 161 + '"]}')


def test_one_backend_serves_both_roles_when_no_decomposer_is_given(replay) -> None:
    both = Recording(replay("daslam_one_backend"))
    out = daslam.build(both, max_subquestions=1, answer_kind="number").compile().invoke({"question": PROBLEM})
    assert [agent_of(r) for r in both.requests] == ["initial_attempt", "decomposition", "sub_solving", "final_answer"]
    assert out.answer is not None


def test_every_call_shares_its_prompt_up_to_the_problem(replay) -> None:
    """prefix-first: one system prompt and one worked example for all steps, then the problem, so a
    prefix cache serves all of that to every call after the first; the step's instruction comes last."""
    both = Recording(replay("daslam_one_backend"))
    daslam.build(both, max_subquestions=1, answer_kind="number").compile().invoke({"question": PROBLEM})
    assert len({r.messages[:-1] for r in both.requests}) == 1
    shared = both.requests[0].messages[:-1]
    assert shared[0].content == daslam.SHARED and [m.role for m in shared[1:]] == ["user", "assistant"] * 4
    assert all(m.content.startswith(f"Problem: {daslam._PROBLEM}") for m in shared[1::2])
    assert '"subquestions":["How many muffins are left?"]' in shared[4].content, "the example obeys the bound"
    for r in both.requests:
        assert r.messages[-1].content.startswith(f"Problem: {PROBLEM}\n")


def test_the_instructions_first_layout_is_still_the_earlier_prompt(replay) -> None:
    """The earlier layout replays from a cassette recorded before prefix-first existed: byte for byte."""
    both = Recording(replay("daslam_one_backend_instructions_first"))
    out = daslam.build(both, max_subquestions=1, answer_kind="number",
                       layout="instructions-first").compile().invoke({"question": PROBLEM})
    assert [agent_of(r) for r in both.requests] == ["initial_attempt", "decomposition", "sub_solving", "final_answer"]
    assert all(len(r.messages) == 4 and r.messages[-1].content.startswith("Problem: ") for r in both.requests)
    assert out.answer is not None


def test_bad_knobs_fail_at_build() -> None:
    with pytest.raises(ConfigError, match=r"knob .max_subquestions. = 0 is not valid .*expected int > 0"):
        daslam.build(max_subquestions=0)


def test_eval_hooks_read_gsm8k_and_math500_rows() -> None:
    gsm = load_dataset("gsm8k", limit=1)[0]
    assert daslam.input_from(gsm) == daslam.Question(question=gsm.fields["question"])
    math = load_dataset("math500", limit=1)[0]
    assert daslam.input_from(math).question == math.fields["question"]
    result = daslam.DaSLaMResult(question="q", answer="18", initial_answer="20", changed=True)
    assert daslam.prediction(result) == "18"
    assert daslam.prediction(daslam.DaSLaMResult(question="q")) is None
    assert daslam.extras(result) == {"initial_answer": "20", "changed": True, "subquestions": 0}
    with pytest.raises(InputError, match="has no 'question' text"):
        daslam.input_from(Example(id="x", fields={"problem": "no question field"}, label="1"))
