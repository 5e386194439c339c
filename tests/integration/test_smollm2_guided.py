"""Guided decoding on the real SmolLM2-135M through llama.cpp.

Mechanics and well-formedness are tested exactly: every sample must validate. Whether the answers
are right is not asserted here (a 135M model is weak); the eval harness reports that.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from agentkit import Agent, Sampling, SchemaViolation
from agentkit.backends.base import GenerationRequest, Message, OutputConstraint
from agentkit.errors import UnsupportedConstraint
from tests.guided_cases import CASES, Review, Text

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(("output_type", "instructions", "texts"), CASES, ids=[c[0].__name__ for c in CASES])
def test_every_guided_sample_validates(smollm2, output_type, instructions, texts) -> None:
    agent = Agent(output_type.__name__.lower(), instructions=instructions, input_type=Text,
                  output_type=output_type, backend=smollm2, n=5,
                  sampling=Sampling(temperature=0.9, max_tokens=200, seed=3), min_valid=5)
    total = 0
    for text in texts:
        result = agent.run(Text(text=text))
        assert result.violations == []
        assert result.finish_reasons == ["stop"] * 5
        assert all(isinstance(o, output_type) for o in result.outputs)
        total += len(result.outputs)
    assert total == 20  # 3 schemas x 20 = 60 real guided generations, all valid


def test_chat_template_comes_from_the_gguf(smollm2) -> None:
    prompt = smollm2.format_prompt(GenerationRequest(messages=(Message(role="user", content="hi"),)))
    assert prompt.startswith("<|im_start|>system\n")  # the template's own default system turn
    assert prompt.endswith("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")


def test_without_the_constraint_free_text_becomes_schema_violation() -> None:
    """The unconstrained path: the model's free text must be caught by validation, not passed on."""
    from agentkit.backends.llamacpp import LlamaCppBackend

    unguided = LlamaCppBackend(guided=False)
    agent = Agent("review", instructions="Describe the review in your own words.", input_type=Text,
                  output_type=Review, backend=unguided, n=3, sampling=Sampling(temperature=0.8, max_tokens=60, seed=1))
    with pytest.raises(SchemaViolation, match=r"agent 'review': 3 of 3 samples failed validation"):
        agent.run(Text(text="The pasta was great but the service was slow."))


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "sequential"])
def test_a_processor_that_cannot_run_is_an_error_not_free_text(batched: bool) -> None:
    """outlines_core without numba raises inside its logits processor. On the sequential path that
    is llama.cpp's ctypes callback, where the exception is swallowed and generation goes on
    unconstrained; the batched path calls it itself. Either way the backend must surface it."""
    script = textwrap.dedent(
        """
        import sys
        sys.modules["numba"] = None  # as on a machine without numba
        from pydantic import BaseModel
        from agentkit import Agent, Sampling
        from agentkit.backends.llamacpp import LlamaCppBackend
        from agentkit.errors import UnsupportedConstraint
        class A(BaseModel):
            answer: str
        class Q(BaseModel):
            question: str
        b = LlamaCppBackend(grammar_engine="outlines_core", n_threads=1, batched=BATCHED)
        agent = Agent("a", instructions="Answer.", input_type=Q, output_type=A, backend=b,
                      sampling=Sampling(max_tokens=40))
        try:
            agent.run(Q(question="What is 2 + 2?"))
        except UnsupportedConstraint as exc:
            print("RAISED", exc)
        else:
            print("NOT RAISED")
        """
    )
    script = script.replace("BATCHED", str(batched))
    out = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=300)
    assert "RAISED the json_schema constraint could not be applied" in out.stdout, out.stdout + out.stderr[-2000:]
    assert "numba" in out.stdout


def test_a_constraint_the_backend_cannot_compile_is_unsupported(smollm2) -> None:
    request = GenerationRequest(messages=(Message(role="user", content="hi"),),
                                constraint=OutputConstraint(kind="grammar", value="start: undefined_rule"))
    import asyncio

    with pytest.raises(UnsupportedConstraint, match="cannot compile this grammar constraint"):
        asyncio.run(smollm2.generate(request))


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "sequential"])
def test_regex_constraint(smollm2, batched: bool) -> None:
    import asyncio

    from agentkit.backends.llamacpp import LlamaCppBackend

    backend = smollm2 if batched else LlamaCppBackend(batched=False, n_threads=1)
    assert backend.batched is batched
    request = GenerationRequest(messages=(Message(role="user", content="Pick a number."),), n=4,
                                constraint=OutputConstraint(kind="regex", value=r"[0-9]{1,3}"))
    gen = asyncio.run(backend.generate(request))
    assert len(gen.choices) == 4
    assert all(c.text.isdigit() and 1 <= len(c.text) <= 3 for c in gen.choices)
    # 4 reads of the prompt (as sequentially): decoded at most once, the rest served from a KV cache
    prompt = len(backend._prompt_tokens(backend.format_prompt(request))) if batched else gen.usage.input_tokens
    assert 0 < gen.usage.input_tokens <= prompt
    assert gen.usage.input_tokens + gen.usage.cached_tokens == 4 * prompt


def test_missing_gguf_is_model_not_found() -> None:
    from agentkit.backends.llamacpp import LlamaCppBackend
    from agentkit.errors import ModelNotFound

    with pytest.raises(ModelNotFound, match="GGUF model file not found: /no/such.gguf"):
        LlamaCppBackend("/no/such.gguf")
