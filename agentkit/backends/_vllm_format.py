"""Input/output formatting for the in-process vLLM engine, kept apart from the engine itself.

Plain dicts and duck-typed outputs only (no ``import vllm``), so the mapping is unit-tested in an
environment without vLLM: GenerationRequest -> SamplingParams keyword arguments (structured
outputs included, shared with the server dialect), RequestOutput -> Generation.
"""

from __future__ import annotations

from typing import Any

from agentkit.backends._openai_format import decoded_samples, vllm_structured_outputs
from agentkit.backends.base import Choice, Generation, GenerationRequest, Usage


def sampling_kwargs(request: GenerationRequest) -> dict[str, Any]:
    """Keyword arguments for ``vllm.SamplingParams``; ``structured_outputs`` is a dict of
    ``StructuredOutputsParams`` fields (the engine module builds the object)."""
    s = request.sampling
    kwargs: dict[str, Any] = {
        "n": decoded_samples(request),  # greedy: one decode, repeated by generation_from
        "temperature": s.temperature,
        "top_p": s.top_p,
        "max_tokens": s.max_tokens,
        "seed": s.seed,
    }
    if s.stop:
        kwargs["stop"] = list(s.stop)
    if request.constraint is not None:
        kwargs["structured_outputs"] = vllm_structured_outputs(request.constraint)
    return kwargs


def generation_from(output: Any, model: str, n: int | None = None) -> Generation:
    """A ``vllm.RequestOutput`` as a Generation of ``n`` choices (a greedy decode is repeated).
    The prompt is counted once (its samples share the prefill); tokens vLLM found in its prefix
    cache are reported as cached, not as input."""
    prompt_tokens = len(output.prompt_token_ids or ())
    cached = min(output.num_cached_tokens or 0, prompt_tokens)
    samples = sorted(output.outputs, key=lambda o: o.index)
    choices = [Choice(text=o.text, finish_reason=o.finish_reason or "unknown") for o in samples]
    if n is not None and len(choices) == 1 and n > 1:
        choices = choices * n
    return Generation(
        choices=choices,
        usage=Usage(
            input_tokens=prompt_tokens - cached,
            cached_tokens=cached,
            output_tokens=sum(len(o.token_ids) for o in samples),
        ),
        model=model,
    )
