"""Batched n-sampling on the real SmolLM2 through llama.cpp: every sample valid, seeds reproducible,
samples stopping on their own, a cancel mid-batch, concurrent requests sharing decode steps, and
the context sized (or the request refused) from n and max_tokens.

One backend with one thread serves the module: the machine's cores are shared, and llama.cpp's
threads spin against other load. Mechanics are asserted exactly; answers are not (135M is weak).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from pydantic import BaseModel, Field

from agentkit.backends.base import Generation, GenerationRequest, Message, OutputConstraint, Sampling
from agentkit.backends.llamacpp import LlamaCppBackend
from agentkit.decoding import constraint_for
from agentkit.errors import ConfigError
from tests.guided_cases import Review

pytestmark = pytest.mark.integration
T = TypeVar("T")


class Answer(BaseModel):
    rationale: str = Field(max_length=120)
    answer: int


@pytest.fixture(scope="module")
def backend() -> LlamaCppBackend:
    return LlamaCppBackend(n_threads=1)


def ask(text: str, *, n: int, constraint: OutputConstraint | None = None, **sampling: object) -> GenerationRequest:
    return GenerationRequest(messages=(Message(role="user", content=text),), n=n, constraint=constraint,
                             sampling=Sampling(**sampling))  # type: ignore[arg-type]


def regex(pattern: str) -> OutputConstraint:
    return OutputConstraint(kind="regex", value=pattern)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def wait_idle(backend: LlamaCppBackend, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not backend._scheduler.idle():  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "the batch worker never went idle"
        time.sleep(0.02)


def test_every_sample_of_a_k8_batch_validates(backend: LlamaCppBackend) -> None:
    """MC-CoT's shape: k=8 guided samples of one prompt in one batch, 256 tokens allowed each."""
    request = ask("3 pens hold 4 sheep each. How many sheep? Think, then answer.", n=8,
                  constraint=constraint_for(Answer), temperature=0.9, max_tokens=256, seed=3)
    gen = run(backend.generate(request))
    assert len(gen.choices) == 8
    for choice in gen.choices:
        assert choice.finish_reason == "stop", choice
        Answer.model_validate_json(choice.text)
    # usage, as sequentially: 8 reads of the prompt, decoded once (less what an earlier request's
    # prefix served, in whole 32-token chunks), the rest served from its KV
    prompt = len(backend._prompt_tokens(backend.format_prompt(request)))
    assert prompt - (prompt - 1) // 32 * 32 <= gen.usage.input_tokens <= prompt
    assert gen.usage.input_tokens + gen.usage.cached_tokens == 8 * prompt
    assert gen.usage.output_tokens >= 8 * len('{"rationale":"","answer":0}') // 4


def test_a_repeated_prompt_is_charged_as_cached_but_its_last_partial_chunk(backend: LlamaCppBackend) -> None:
    """The scheduler's prefix cache serves a request the prompt an earlier one decoded; its usage
    says so (the prompt's last token is always decoded: the samples draw from its logits)."""
    request = ask("Name three rivers of Europe, briefly.", n=2, temperature=0.7, max_tokens=8, seed=4)
    prompt = len(backend._prompt_tokens(backend.format_prompt(request)))
    assert prompt > 32  # at least one whole chunk to reuse
    run(backend.generate(request))
    again = run(backend.generate(request))
    assert again.usage.input_tokens == prompt - (prompt - 1) // 32 * 32
    assert again.usage.cached_tokens == 2 * prompt - again.usage.input_tokens


def test_same_request_same_seeds_same_samples(backend: LlamaCppBackend) -> None:
    """Reproducible on the same backend after other work (its prefix cache then holds a different
    prompt, or the same one), and on a fresh backend."""
    request = ask("Review: the soup was cold, the bread was fresh.", n=4, constraint=constraint_for(Review),
                  temperature=1.0, max_tokens=120, seed=21)
    first = run(backend.generate(request))
    run(backend.generate(ask("Pick a number.", n=2, constraint=regex(r"[0-9]{1,3}"), seed=5)))
    after_other = run(backend.generate(request))
    again = run(backend.generate(request))
    fresh = run(LlamaCppBackend(n_threads=1).generate(request))
    texts = [c.text for c in first.choices]
    assert len(set(texts)) > 1, "seeds seed + i should give different samples"
    for other in (after_other, again, fresh):
        assert [c.text for c in other.choices] == texts
        assert [c.finish_reason for c in other.choices] == [c.finish_reason for c in first.choices]
    for text in texts:
        Review.model_validate_json(text)


def test_samples_stop_on_their_own(backend: LlamaCppBackend) -> None:
    """A stop string ends one sample and leaves the others decoding up to max_tokens."""
    request = ask("Write two short sentences about the sea.", n=8, temperature=1.0, max_tokens=14,
                  stop=(".",), seed=8)
    gen = run(backend.generate(request))
    reasons = [c.finish_reason for c in gen.choices]
    assert "stop" in reasons and "length" in reasons, reasons
    for choice in gen.choices:
        assert "." not in choice.text
    assert gen.usage.output_tokens < 8 * 14  # the stopped ones did not run on


def test_regex_samples_end_when_the_constraint_is_complete(backend: LlamaCppBackend) -> None:
    """Exactly five digits: the matcher admits nothing more after the fifth, so each sample ends
    there (no end-of-sequence token needed), and the output is counted exactly."""
    gen = run(backend.generate(ask("Give a 5-digit code.", n=6, constraint=regex(r"[0-9]{5}"),
                                   temperature=1.0, max_tokens=64, seed=2)))
    assert [len(c.text) for c in gen.choices] == [5] * 6
    assert all(c.text.isdigit() and c.finish_reason == "stop" for c in gen.choices)
    assert gen.usage.output_tokens == 30  # SmolLM2 has one token per digit


def test_concurrent_requests_share_decode_steps(backend: LlamaCppBackend) -> None:
    requests = [ask(f"Give a 5-digit code for door {i}.", n=2, constraint=regex(r"[0-9]{5}"),
                    temperature=1.0, max_tokens=8, seed=i) for i in range(3)]  # fmt: skip
    sched = backend._scheduler
    assert sched is not None
    before = sched.steps
    one_by_one = [run(backend.generate(r)) for r in requests]
    alone_steps = sched.steps - before  # 4 steps each: the first digit comes from the prompt's logits

    async def together() -> list[Generation]:
        return await asyncio.gather(*(backend.generate(r) for r in requests))

    before = sched.steps
    concurrent = run(together())
    assert sched.steps - before < alone_steps == 12
    for gen in one_by_one + concurrent:
        assert [len(c.text) for c in gen.choices] == [5, 5]


def test_a_cancel_mid_batch_frees_the_sequences_and_the_backend_goes_on(backend: LlamaCppBackend) -> None:
    sched = backend._scheduler
    assert sched is not None
    # at least 120 letters each: dozens of decode steps, time enough to cancel in the middle
    long = ask("Write a long word list.", n=4, constraint=regex(r"[a-z ]{120,160}"), temperature=1.0,
               max_tokens=200, seed=4)

    async def cancel_mid_batch() -> int:
        task = asyncio.create_task(backend.generate(long))
        start = sched.steps
        deadline = time.monotonic() + 120
        while sched.steps < start + 3:
            assert time.monotonic() < deadline and not task.done()
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return sched.steps - start

    stepped = run(cancel_mid_batch())
    assert stepped >= 3
    wait_idle(backend)
    assert sched.held_sequences() == []  # every cancelled sequence's KV cells were freed
    gen = run(backend.generate(ask("Pick a number.", n=3, constraint=regex(r"[0-9]{1,3}"), seed=1)))
    assert all(c.text.isdigit() for c in gen.choices)
    wait_idle(backend)
    assert sched.held_sequences() == []


def test_the_batch_context_grows_to_fit_n_times_max_tokens() -> None:
    """n_ctx=2048 does not hold a prompt plus 8 x 256 tokens: the batch is sized from the request."""
    small = LlamaCppBackend(n_threads=1, n_ctx=2048)
    request = ask("Pick a number.", n=8, constraint=regex(r"[0-9]{1,3}"), max_tokens=256, seed=6)
    gen = run(small.generate(request))
    assert len(gen.choices) == 8 and all(c.text.isdigit() for c in gen.choices)
    ctx = small._scheduler.context  # type: ignore[union-attr]
    assert ctx is not None and ctx.n_cells >= gen.usage.input_tokens + 8 * 256


def test_a_request_larger_than_the_batch_context_runs_in_sub_batches_with_the_same_seeds() -> None:
    """max_batch_ctx=1024 holds the prompt plus 3 x 256 tokens: n=6 runs as two sub-batches of 3,
    one after the other, and sample i still uses seed + i, so each half equals the n=3 request with
    that half's first seed."""
    small = LlamaCppBackend(n_threads=1, max_batch_ctx=1024)
    request = ask("Pick a number.", n=6, constraint=regex(r"[0-9]{1,3}"), max_tokens=256, temperature=1.0, seed=11)
    whole = run(small.generate(request))
    assert len(whole.choices) == 6 and all(c.text.isdigit() for c in whole.choices)
    first = run(small.generate(ask("Pick a number.", n=3, constraint=regex(r"[0-9]{1,3}"), max_tokens=256,
                                   temperature=1.0, seed=11)))
    second = run(small.generate(ask("Pick a number.", n=3, constraint=regex(r"[0-9]{1,3}"), max_tokens=256,
                                    temperature=1.0, seed=14)))
    texts = [c.text for c in whole.choices]
    assert texts == [c.text for c in first.choices] + [c.text for c in second.choices]
    assert small._scheduler is not None and small._scheduler.context.n_cells <= 1024  # type: ignore[union-attr]


def test_a_sample_that_cannot_fit_alone_is_refused_naming_max_tokens_and_max_batch_ctx() -> None:
    small = LlamaCppBackend(n_threads=1, max_batch_ctx=512)
    with pytest.raises(ConfigError, match=r"max_tokens=600 needs \d+ KV cells, more than max_batch_ctx=512"):
        run(small.generate(ask("Pick a number.", n=2, max_tokens=600)))


def test_the_sequential_path_is_still_there() -> None:
    sequential = LlamaCppBackend(n_threads=1, batched=False)
    gen = run(sequential.generate(ask("Pick a number.", n=3, constraint=regex(r"[0-9]{1,3}"), seed=1)))
    assert all(c.text.isdigit() for c in gen.choices)
    assert gen.usage.cached_tokens == 2 * gen.usage.input_tokens


def test_json_text_of_every_choice_is_what_the_model_wrote(backend: LlamaCppBackend) -> None:
    """Text comes out whole: multi-byte characters and JSON escapes survive the byte-level pieces."""
    gen = run(backend.generate(ask("Name a café in Zürich, in JSON.", n=3, temperature=0.8, seed=9, max_tokens=60,
                                   constraint=OutputConstraint(kind="json_schema", value={
                                       "type": "object", "properties": {"name": {"type": "string", "maxLength": 30}},
                                       "required": ["name"], "additionalProperties": False}))))  # fmt: skip
    for choice in gen.choices:
        assert isinstance(json.loads(choice.text)["name"], str)
