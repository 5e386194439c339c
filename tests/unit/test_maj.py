"""MAJ mechanics on replayed real SmolLM2 generations: concurrent judges, deliberation rounds with
the board's previous verdicts in context, early stop on unanimity, the round cap, ties broken by
confidence, judges whose samples all fail validation, and profiles as data."""

from __future__ import annotations

import time

import pytest

from agentkit.agent import schema_hint
from agentkit.backends.base import Backend, Choice, Generation, GenerationRequest
from agentkit.errors import ConfigError, SchemaViolation
from agentkit.eval import load_dataset
from agentkit.graphs import maj
from agentkit.graphs.maj import JudgeTurn, majority_verdict
from tests.conftest import RECORD
from tests.helpers import Recording

CASES = {e.id: e for e in load_dataset("gsm8k-judge", limit=8)}
UNANIMOUS = maj.input_from(CASES["gsm8k-judge-0001-6b_verification"])  # the greedy board agrees at once
SPLIT = maj.input_from(CASES["gsm8k-judge-0000-175b_finetuning"])  # the board splits in round 0 ...
SAMPLED = {"temperature": 0.7, "seed": 3}  # ... sampled so, the deductive and robust judges disagree
NAMES = [p.name for p in maj.DEFAULT_JUDGES]


class Truncating:
    """Returns the real generation cut in half with finish_reason 'length', as a too-small max_tokens
    does; ``after`` calls are passed through untouched first."""

    def __init__(self, inner: Backend, after: int = 0) -> None:
        self.inner, self.provider, self.model = inner, inner.provider, inner.model
        self.after = after
        self.requests: list[GenerationRequest] = []

    async def generate(self, request: GenerationRequest) -> Generation:
        self.requests.append(request)
        real = await self.inner.generate(request)
        if len(self.requests) <= self.after:
            return real
        cut = [Choice(text=c.text[: len(c.text) // 2], finish_reason="length") for c in real.choices]
        return real.model_copy(update={"choices": cut})


def judge_of(request: GenerationRequest) -> str:
    """Which judge sent a request: only its own profile is anywhere in its prompt."""
    text = "\n".join(m.content for m in request.messages)
    return next(p.name for p in maj.DEFAULT_JUDGES if p.instructions in text)


def rounds_of(out: maj.MAJResult) -> list[list[str | None]]:
    return [[t.verdict for t in out.transcript if t.round == r] for r in range(out.rounds_used + 1)]


def test_judges_run_concurrently(replay) -> None:
    backend = Recording(replay("maj_board"), delay_s=0.3)
    graph = maj.build(backend).compile()
    start = time.perf_counter()
    out = graph.invoke(UNANIMOUS)
    elapsed = time.perf_counter() - start
    assert backend.max_in_flight == len(NAMES) == 3, "the three judges should be in flight together"
    if not RECORD:  # recording runs the real model, which serves one request at a time
        assert elapsed < 0.3 * 3 * 0.8, f"three 0.3 s judges took {elapsed:.2f} s: they ran one after another"
    assert out.rounds_used == 0


def test_judges_share_every_token_before_their_own_profile(replay) -> None:
    """prefix-first: system prompt (with the output format every judge shares), case and transcript
    lead identically, so a prefix cache serves them to judges 2 and 3; the profile, all that differs,
    is the last line."""
    backend = Recording(replay("maj_board"))
    out = maj.build(backend, **SAMPLED, max_rounds=2).compile().invoke(SPLIT)
    assert out.rounds_used >= 1, "this case deliberates, so rounds with a transcript are covered too"
    for r in range(out.rounds_used + 1):
        asks = backend.requests[3 * r: 3 * (r + 1)]
        assert len({a.messages[:-1] for a in asks}) == 1
        assert asks[0].messages[0].content == f"{maj.BOARD_SHARED_INSTRUCTIONS}\n{schema_hint(maj.Judgment)}"
        heads = set()
        for ask in asks:
            me = next(p for p in maj.DEFAULT_JUDGES if p.name == judge_of(ask))
            head, tail = ask.messages[-1].content.split("\n\n" + maj.JUDGE_TASK.format(name=me.name, profile=me.instructions))
            assert head.startswith(f"Question: {SPLIT.question}\nCandidate solution: {SPLIT.candidate}")
            assert tail == "", "the profile is the last line"
            heads.add(head)
        assert len(heads) == 1, f"round {r}: the judges' prompts differ before their profiles"


def test_the_profile_first_layout_is_still_the_earlier_prompt(replay) -> None:
    """The earlier layout replays from a cassette recorded before prefix-first existed: byte for byte."""
    backend = Recording(replay("maj_board_profile_first"))
    out = maj.build(backend, max_rounds=2, layout="profile-first").compile().invoke(SPLIT)
    assert out.rounds_used >= 1
    for ask in backend.requests:
        me = next(p for p in maj.DEFAULT_JUDGES if p.name == judge_of(ask))
        assert ask.messages[0].content.startswith(maj.BOARD_INSTRUCTIONS.format(profile=me.instructions))
        assert ask.messages[-1].content.startswith(f"Question: {SPLIT.question}")
    assert all("- You: " in a.messages[-1].content for a in backend.requests[3:])
    with pytest.raises(ConfigError, match="knob 'layout'"):
        maj.build(layout="judge-first")


def test_a_unanimous_board_stops_after_the_independent_judgments(replay) -> None:
    backend = Recording(replay("maj_board"))
    out = maj.build(backend, max_rounds=2).compile().invoke(UNANIMOUS)
    assert len(backend.requests) == 3 and sorted(judge_of(r) for r in backend.requests) == sorted(NAMES)
    assert out.unanimous and out.rounds_used == 0
    assert [t.judge for t in out.transcript] == NAMES and {t.round for t in out.transcript} == {0}
    assert out.answer == out.transcript[0].verdict and out.agreement == 1.0
    assert out.votes.counts == {out.answer: 3}
    for request in backend.requests:  # round 0: every judge decides alone
        assert "verdicts:" not in request.messages[-1].content


def test_a_split_board_deliberates_with_the_previous_round_in_context(replay) -> None:
    backend = Recording(replay("maj_board"))
    out = maj.build(backend, **SAMPLED, max_rounds=2).compile().invoke(SPLIT)
    verdicts = rounds_of(out)
    assert len(set(verdicts[0])) == 2, "this cassette's board splits in round 0"
    assert 1 <= out.rounds_used <= 2
    assert len(backend.requests) == 3 * (out.rounds_used + 1)
    assert [(t.round, t.judge) for t in out.transcript] == [(r, n) for r in range(out.rounds_used + 1) for n in NAMES]
    if out.rounds_used < 2:
        assert out.unanimous and len(set(verdicts[-1])) == 1, "it stopped early only because it agreed"
    # every deliberating judge sees each judge's previous verdict, confidence and rationale, all by name
    for r in range(1, out.rounds_used + 1):
        asks = backend.requests[3 * r: 3 * (r + 1)]
        assert len(asks) == 3
        for ask in asks:
            me, text = judge_of(ask), ask.messages[-1].content
            assert f"Round {r - 1} verdicts:" in text and maj.DELIBERATION_INSTRUCTIONS in text
            for t in (t for t in out.transcript if t.round == r - 1):
                assert f"- {t.judge}: {t.verdict} (confidence {t.confidence:.2f}): {t.rationale}" in text
            assert f"Round {r} verdicts:" not in text
            assert "- You:" not in text and text.index(f"You are the judge {me}.") > text.index("verdicts:")


def test_the_round_cap_stops_a_split_board(replay) -> None:
    backend = Recording(replay("maj_board"))
    out = maj.build(backend, **SAMPLED, max_rounds=0).compile().invoke(SPLIT)
    assert len(backend.requests) == 3
    assert out.rounds_used == 0 and not out.unanimous
    assert out.votes.total == 3 and out.agreement == pytest.approx(2 / 3)
    assert out.votes.counts[out.answer] == 2


def test_a_tied_board_follows_the_higher_confidence_then_the_first_judge() -> None:
    def turn(judge: str, verdict: str, confidence: float) -> JudgeTurn:
        return JudgeTurn(round=0, judge=judge, verdict=verdict, rationale="r", confidence=confidence)

    assert majority_verdict([turn("a", "correct", 0.4), turn("b", "incorrect", 0.9)])[1] == "incorrect"
    assert majority_verdict([turn("a", "incorrect", 0.3), turn("b", "correct", 0.8)])[1] == "correct"
    tie = [turn("a", "correct", 0.2), turn("b", "incorrect", 0.1), turn("c", "incorrect", 0.1),
           turn("d", "correct", 0.2)]
    assert majority_verdict(tie)[1] == "correct"  # 2-2 on votes, 0.4 vs 0.2 on confidence
    assert majority_verdict([turn("a", "incorrect", 0.5), turn("b", "correct", 0.5)])[1] == "incorrect"
    assert majority_verdict([turn("a", "correct", 0.5), turn("b", "incorrect", 0.5)])[1] == "correct"
    # a clear majority is not overruled by confidence
    votes, winner = majority_verdict([turn("a", "correct", 1.0), turn("b", "incorrect", 0.1),
                                      turn("c", "incorrect", 0.1)])
    assert winner == "incorrect" and votes.counts == {"correct": 1, "incorrect": 2}
    assert majority_verdict([JudgeTurn(round=0, judge="a")]) == (majority_verdict([])[0], None)


def test_a_tie_on_the_real_board_goes_to_the_more_confident_judge_in_any_order(replay) -> None:
    two = [maj.DEDUCTIVE, maj.ROBUST]
    out = maj.build(replay("maj_board"), judges=two, **SAMPLED, max_rounds=0).compile().invoke(SPLIT)
    deductive, robust = out.transcript
    assert deductive.verdict != robust.verdict, "this cassette's two judges disagree"
    assert deductive.confidence != robust.confidence, "with different confidence"
    surer = max(out.transcript, key=lambda t: t.confidence or 0.0)
    assert out.answer == surer.verdict and out.agreement == 0.5
    flipped = maj.build(replay("maj_board"), judges=two[::-1], **SAMPLED, max_rounds=0).compile().invoke(SPLIT)
    assert flipped.answer == surer.verdict, "confidence, not listing order, breaks this tie"


def test_a_judge_whose_samples_all_fail_validation_abstains(replay) -> None:
    broken = Truncating(replay("maj_board"))
    judges = [maj.DEDUCTIVE, maj.ROBUST, maj.LOGICAL.model_copy(update={"backend": broken})]
    out = maj.build(replay("maj_board"), judges=judges, **SAMPLED, max_rounds=2).compile().invoke(SPLIT)
    abstained = [t for t in out.transcript if t.judge == maj.LOGICAL.name]
    assert len(abstained) == out.rounds_used + 1 == len(broken.requests), "the broken judge is asked every round"
    assert all(t.verdict is None and t.rationale is None and t.confidence is None for t in abstained)
    assert all(t.error and "max_tokens" in t.error for t in abstained), "the transcript says why it abstained"
    assert all(t.error is None for t in out.transcript if t.verdict is not None)
    assert len(set(rounds_of(out)[0]) - {None}) == 2, "the two working judges split in round 0, so they deliberate"
    assert out.rounds_used >= 1
    spoke = [t for t in out.transcript if t.round == out.rounds_used and t.verdict is not None]
    assert len(spoke) == 2 and out.votes.total == 2
    if out.rounds_used < 2:  # an abstainer neither votes nor blocks unanimity
        assert out.unanimous and len({t.verdict for t in spoke}) == 1
    for request in broken.requests[1:]:
        assert f"- {maj.LOGICAL.name}: gave no valid verdict" in request.messages[-1].content


def test_a_judge_that_fails_in_a_later_round_stands_by_its_last_verdict(replay) -> None:
    late = Truncating(replay("maj_board"), after=1)  # valid in round 0, broken from round 1 on
    judges = [maj.DEDUCTIVE, maj.LOGICAL, maj.ROBUST.model_copy(update={"backend": late})]
    out = maj.build(replay("maj_board"), judges=judges, **SAMPLED, max_rounds=2).compile().invoke(SPLIT)
    robust = [t for t in out.transcript if t.judge == maj.ROBUST.name]
    assert robust[0].verdict is not None and all(t.verdict is None for t in robust[1:])
    assert out.rounds_used >= 1
    final = {t.judge: t.verdict for t in out.transcript if t.round == out.rounds_used and t.verdict}
    assert set(final) == {maj.DEDUCTIVE.name, maj.LOGICAL.name}
    assert out.votes.total == 3, "the abstainer's round-0 verdict still counts"
    expected = [*final.values(), robust[0].verdict]
    assert out.votes.counts == {v: expected.count(v) for v in set(expected)}


def test_a_board_with_no_valid_verdict_at_all_is_a_schema_violation(replay) -> None:
    judges = [p.model_copy(update={"backend": Truncating(replay("maj_board"))}) for p in maj.DEFAULT_JUDGES]
    with pytest.raises(SchemaViolation, match="no judge returned a valid verdict in 2 round"):
        maj.build(judges=judges, max_rounds=1).compile().invoke(UNANIMOUS)


def test_profiles_are_data_and_may_bring_their_own_backend(replay) -> None:
    shared, own = Recording(replay("maj_board")), Recording(replay("maj_board"))
    judges = [p.model_dump(exclude={"backend"}) for p in maj.DEFAULT_JUDGES]  # plain dicts, as from JSON
    judges[2]["backend"] = own
    out = maj.build(shared, judges=judges).compile().invoke(UNANIMOUS)
    assert [judge_of(r) for r in own.requests] == [maj.ROBUST.name]
    assert sorted(judge_of(r) for r in shared.requests) == sorted(NAMES[:2])
    assert [t.judge for t in out.transcript] == NAMES


def test_samples_are_one_request_per_judge_and_round(replay) -> None:
    backend = Recording(replay("maj_samples"))
    out = maj.build(backend, samples=2, temperature=0.7, seed=3, max_rounds=0).compile().invoke(UNANIMOUS)
    assert [r.n for r in backend.requests] == [2, 2, 2]
    assert len(out.transcript) == 3


@pytest.mark.parametrize(
    ("judges", "message"),
    [([], "judges is empty"), ([maj.DEDUCTIVE, maj.DEDUCTIVE], "repeated: \\['deductive_reasoner'\\]"),
     ([{"name": "x"}], "judge 0: field 'instructions'")],
)
def test_bad_profiles_are_rejected_at_build(judges, message) -> None:
    with pytest.raises(ConfigError, match=message):
        maj.build(judges=judges)


def test_negative_rounds_are_rejected() -> None:
    with pytest.raises(ConfigError, match=r"knob .max_rounds. = -1 is not valid .*expected int >= 0"):
        maj.build(max_rounds=-1)


def test_eval_hooks_read_gsm8k_judge_rows() -> None:
    example = CASES["gsm8k-judge-0000-175b_finetuning"]
    assert maj.input_from(example) == maj.JudgeInput(question=example.fields["question"],
                                                     candidate=example.fields["candidate"])
    assert maj.prediction(maj.MAJResult(question="q", candidate="c", answer="incorrect")) == "incorrect"
    with pytest.raises(ConfigError, match="has no candidate text; evaluate it on a judging set"):
        maj.input_from(load_dataset("gsm8k", limit=1)[0])


def test_cli_asks_for_input_json_when_given_only_a_question() -> None:
    """MAJ needs a candidate too: --question alone is a usage error (exit 2), not a traceback."""
    from typer.testing import CliRunner

    from agentkit.cli import app

    result = CliRunner().invoke(app, ["run", "maj", "--question", "Is 2 + 2 = 4?"])
    assert result.exit_code == 2
    assert "takes --input JSON with fields: question, candidate" in result.output
