"""Drives VLLMEngineBackend inside the vLLM venv for tests/vllm/test_engine_real.py.

Deliberately WITHOUT an ``if __name__ == "__main__":`` guard: vLLM's CPU engine spawns processes
that re-import ``__main__``, and the backend must keep such a script working. Prints one JSON
object: load time, every sample's text and finish reason per request, batching counters, MC-CoT.
"""

import asyncio
import json
import sys
import time

from agentkit import Agent, Sampling
from agentkit.backends.vllm_engine import VLLMEngineBackend
from agentkit.graphs import mccot
from tests.guided_cases import CASES, Text

start = time.perf_counter()
# eager: torch.compile's 4-5 minutes of warm-up would be most of this test's time (the engine, its
# batching and its guided decoding are the same without it)
backend = VLLMEngineBackend(sys.argv[1], enforce_eager=True)
load_s = time.perf_counter() - start


async def guided() -> list[dict]:
    calls = []
    for i, (output_type, instructions, texts) in enumerate(CASES):
        agent = Agent(
            output_type.__name__.lower(),
            instructions=instructions,
            input_type=Text,
            output_type=output_type,
            n=3,
            sampling=Sampling(temperature=0.7, max_tokens=200, seed=i),
        )
        for text in texts[:1]:
            calls.append((output_type.__name__, agent.request(Text(text=text))))
    gens = await asyncio.gather(*(backend.generate(req) for _, req in calls))
    return [
        {"type": name, "n": req.n, "choices": [c.model_dump() for c in g.choices], "usage": g.usage.model_dump()}
        for (name, req), g in zip(calls, gens, strict=True)
    ]


async def main() -> dict:
    requests = await guided()
    calls_after_guided = backend.engine_calls
    graph = mccot.build(backend, k=4, answer_kind="number", seed=3).compile()
    out, stats = await graph.ainvoke_with_stats({"question": "What is 12 + 30?"})
    return {
        "load_s": load_s,
        "dtype": backend.dtype,
        "engine_dtype": str(backend._llm.model_config.dtype),  # what vLLM loaded the weights as
        "requests": requests,
        "engine_calls_for_guided": calls_after_guided,
        "mccot": {
            "k": out.k,
            "samples": len(out.samples),
            "valid": stats.valid_samples,
            "calls": stats.calls,
            "answer": out.answer,
            "winner": out.votes.winner,
        },
    }


result = asyncio.run(main())
backend.close()
sys.stdout.write("RESULT " + json.dumps(result) + "\n")
