"""A backend that answers any JSON-schema request with schema-valid JSON whose ``answer`` is scripted.

For tests of what the harness does AROUND the model (votes, budgets, routing, files written), where
the answers must be known in advance; model behaviour itself is tested on recorded cassettes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from agentkit.backends.base import Choice, Generation, GenerationRequest, Usage

#: (question text of the request's last message, sample index) -> the sample's answer
Script = Callable[[str, int], str]


class FakeAnswers:
    provider = "fake"
    model = "fake-135m"  # priced as a 135M model by the default price table

    def __init__(self, script: Script | Sequence[str] | str) -> None:
        if isinstance(script, str):
            fixed = script
            self.script: Script = lambda question, i: fixed
        elif callable(script):
            self.script = script
        else:
            answers = list(script)
            self.script = lambda question, i: answers[i % len(answers)]
        self.requests: list[GenerationRequest] = []

    async def generate(self, request: GenerationRequest) -> Generation:
        self.requests.append(request)
        assert request.constraint is not None and request.constraint.kind == "json_schema", request.constraint
        properties = request.constraint.value["properties"]
        question = request.messages[-1].content
        choices = []
        for i in range(request.n):
            reply = {name: self.script(question, i) if name == "answer" else "step by step" for name in properties}
            choices.append(Choice(text=json.dumps(reply), finish_reason="stop"))
        # llama.cpp-like accounting: the prompt is computed once, later samples read it from the cache
        usage = Usage(input_tokens=100, cached_tokens=100 * (request.n - 1), output_tokens=10 * request.n)
        return Generation(choices=choices, usage=usage, model=self.model)

    def questions(self) -> list[str]:
        return [r.messages[-1].content for r in self.requests]
