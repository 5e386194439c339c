"""Agent message order: the classic instructions-first layout is unchanged, and prefix-first puts
what branches share first and the agent's own task and output format last (prefix caches reuse only
an identical leading run of whole blocks)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field

from agentkit import Agent, Message
from agentkit.agent import schema_hint
from agentkit.errors import ConfigError


class Case(BaseModel):
    question: str


class Verdict(BaseModel):
    verdict: str = Field(description="'yes' or 'no'")


SHOT = (Case(question="Is 2 + 2 = 4?"), Verdict(verdict="yes"))
HINT = schema_hint(Verdict)


def agent(**kw) -> Agent[Case, Verdict]:
    return Agent("judge", instructions="You judge answers.", output_type=Verdict, **kw)


def test_instructions_first_is_the_default_and_renders_as_before() -> None:
    msgs = agent(examples=[SHOT]).messages(Case(question="Is 3 > 5?"))
    assert [m.role for m in msgs] == ["system", "user", "assistant", "user"]
    assert msgs[0].content == f"You judge answers.\n{HINT}"
    assert msgs[1].content == "Question: Is 2 + 2 = 4?" and msgs[2].content == '{"verdict":"yes"}'
    assert msgs[3].content == "Question: Is 3 > 5?"
    # a task joins the system prompt in this layout: still nothing after the input
    with_task = agent(task="Be strict.").messages(Case(question="q"))
    assert with_task[0].content == f"You judge answers. Be strict.\n{HINT}" and with_task[-1].content == "Question: q"


def test_prefix_first_puts_the_task_and_format_after_the_input() -> None:
    shared = (Message(role="user", content="Shared example?"), Message(role="assistant", content='{"verdict":"no"}'))
    a = agent(task="Be strict.", layout="prefix-first", shared_turns=shared, examples=[SHOT])
    msgs = a.messages(Case(question="Is 3 > 5?"))
    assert msgs[0] == Message(role="system", content="You judge answers.")
    assert msgs[1:3] == shared, "shared turns follow the system prompt, before the agent's own examples"
    assert msgs[3].content == f"Question: Is 2 + 2 = 4?\n\nBe strict.\n{HINT}", "examples look like the real turn"
    assert msgs[-1].content == f"Question: Is 3 > 5?\n\nBe strict.\n{HINT}"
    assert a.exchange(*SHOT) == msgs[3:5]


def test_branches_differing_only_in_task_share_everything_before_it() -> None:
    case = Case(question="A long shared case " * 20)
    strict = agent(task="Be strict.", layout="prefix-first").messages(case)
    lenient = agent(task="Be lenient.", layout="prefix-first").messages(case)
    old_strict = agent(task="Be strict.").messages(case)
    old_lenient = agent(task="Be lenient.").messages(case)

    def common(a: tuple[Message, ...], b: tuple[Message, ...]) -> int:
        x, y = "".join(m.content for m in a), "".join(m.content for m in b)
        return next((i for i, (c, d) in enumerate(zip(x, y, strict=False)) if c != d), min(len(x), len(y)))

    assert common(strict, lenient) > len("You judge answers.") + len(case.question)
    assert common(old_strict, old_lenient) == len("You judge answers. Be ")


def test_prefix_first_without_a_task_still_ends_with_the_format() -> None:
    msgs = agent(layout="prefix-first").messages(Case(question="q"))
    assert msgs[0].content == "You judge answers." and msgs[-1].content == f"Question: q\n\n{HINT}"


def test_an_unknown_layout_is_a_config_error_naming_the_agent() -> None:
    with pytest.raises(ConfigError, match=r"agent 'judge': layout must be one of .*'prefix-first'.*got 'last'"):
        agent(layout="last")


def test_shared_format_moves_the_format_into_the_system_message_and_leaves_only_the_task_last() -> None:
    a = agent(task="Be strict.", layout="prefix-first", shared_format=True, examples=[SHOT])
    msgs = a.messages(Case(question="Is 3 > 5?"))
    assert msgs[0].content == f"You judge answers.\n{HINT}"
    assert msgs[1].content == "Question: Is 2 + 2 = 4?\n\nBe strict." and msgs[-1].content == "Question: Is 3 > 5?\n\nBe strict."
    bare = agent(layout="prefix-first", shared_format=True).messages(Case(question="q"))
    assert bare[-1].content == "Question: q", "no task and a shared format: the input alone"


def test_shared_format_needs_the_prefix_first_layout() -> None:
    with pytest.raises(ConfigError, match=r"agent 'judge': shared_format=True needs layout='prefix-first'"):
        agent(shared_format=True)
