"""ToolAgent: a small model that calls tools in a bounded ReAct loop (act, observe, answer).

Each step is ONE guided-decoding call whose output type is a discriminated union over the
actions: ``{"action": "<tool>", "args": {...}}`` for every registered tool, with that tool's own
typed arguments, or ``{"action": "final_answer", "answer": {...}}`` in the agent's output type.
The grammar therefore only admits registered tool names and well-formed arguments: a 135M model
cannot call a tool that does not exist or forget an argument. What the grammar cannot rule out
(an expression the calculator cannot parse, a failing tool) comes back to the model as an
observation and is counted, not raised, so it can try again within ``max_steps``.

A ToolAgent is an :class:`~agentkit.agent.Agent`, so it drops into ``Graph.add_agent`` as is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Annotated, Any, Generic, Literal, TypeVar, Union

from opentelemetry.trace import Span
from pydantic import BaseModel, ConfigDict, Field, RootModel, create_model

from agentkit import tracing
from agentkit.agent import Agent, AgentResult, Retry
from agentkit.backends.base import Backend, GenerationRequest, Message, Sampling
from agentkit.errors import AgentkitError, ConfigError, SchemaViolation, ToolError
from agentkit.tools.base import Tool, ToolRegistry
from agentkit.tools.verifier_tool import verifier_tool
from agentkit.verifiers.base import Verifier

__all__ = ["FINAL_ACTION", "ToolAgent", "ToolAgentResult", "ToolExample", "ToolStep", "ToolStepsExhausted"]

InT = TypeVar("InT", bound=BaseModel)
OutT = TypeVar("OutT", bound=BaseModel)

FINAL_ACTION = "final_answer"


class ToolExample(BaseModel):
    """A worked episode shown to the model: the tool calls to make, then the final output.

    The observations are produced by really running the tools when the agent is built, so an
    example can never show the model a result its tools would not give.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)
    input: BaseModel
    calls: list[tuple[str, dict[str, Any]]] = Field(default_factory=list)
    output: BaseModel


class ToolStep(BaseModel):
    """One model turn: which action, with what arguments, and what came back."""

    action: str  # a tool name, "final_answer", or "invalid" (the reply did not validate)
    args: dict[str, Any] | None = None
    reply: str
    observation: str | None = None
    error: str | None = None


class ToolAgentResult(AgentResult[OutT], Generic[OutT]):
    """An AgentResult (``output`` is the final answer) plus the episode that produced it."""

    steps: list[ToolStep] = Field(default_factory=list)
    tool_calls: int = 0
    tool_errors: int = 0
    invalid_steps: int = 0


class ToolStepsExhausted(AgentkitError):
    """The agent used all its steps without giving a final answer; ``steps`` holds the episode."""

    def __init__(self, message: str, *, steps: list[ToolStep]) -> None:
        super().__init__(message)
        self.steps = steps


class _Turn(BaseModel):
    reply: str
    observation: str


class _Episode(BaseModel):
    """The step agent's input: the task as first shown, then every (reply, observation) so far."""

    task: str
    turns: list[_Turn] = Field(default_factory=list)


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[_\-]+", name) if part)


def _call_variant(tool: Tool) -> type[BaseModel]:
    return create_model(  # type: ignore[call-overload,no-any-return]
        f"Call{_camel(tool.name)}",
        __config__=ConfigDict(extra="forbid"),
        action=(Literal[tool.name], ...),  # type: ignore[valid-type]
        args=(tool.args_model, ...),
    )


def _final_variant(output_type: type[BaseModel]) -> type[BaseModel]:
    return create_model(  # type: ignore[call-overload,no-any-return]
        "FinalAnswer",
        __config__=ConfigDict(extra="forbid"),
        action=(Literal[FINAL_ACTION], ...),  # type: ignore[valid-type]
        answer=(output_type, ...),
    )


def _one_of(variants: list[type[BaseModel]]) -> type[BaseModel]:
    """The actions a turn may take, as one type discriminated by ``action`` (a lone variant as is)."""
    if len(variants) == 1:
        return variants[0]
    union = Union[tuple(variants)]  # type: ignore[valid-type]  # noqa: UP007
    return RootModel[Annotated[union, Field(discriminator="action")]]  # type: ignore[valid-type,no-any-return]


def _shape(model: type[BaseModel]) -> str:
    """``{"field": <description>, ...}``: what a model is told about an object's fields."""
    props = model.model_json_schema().get("properties", {})
    return (
        "{" + ", ".join(f'"{k}": <{v.get("description") or v.get("type") or "value"}>' for k, v in props.items()) + "}"
    )


def _render(value: Any) -> str:
    """A tool result as text for the model: strings as is, pydantic objects as compact JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, BaseModel):
        return value.model_dump_json(exclude_none=True)
    if isinstance(value, list | tuple) and value and all(isinstance(v, BaseModel) for v in value):
        return "\n".join(v.model_dump_json(exclude_none=True) for v in value)
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _registry(tools: ToolRegistry | Iterable[Tool | Verifier | Callable[..., Any]]) -> ToolRegistry:
    if isinstance(tools, ToolRegistry):
        registry = tools
    else:
        registry = ToolRegistry()
        for t in tools:
            if isinstance(t, Tool):
                registry.add(t)
            elif isinstance(t, Verifier):
                registry.add(verifier_tool(t))
            else:
                registry.add(t)
    if not len(registry):
        raise ConfigError("a ToolAgent needs at least one tool")
    if FINAL_ACTION in registry:
        raise ConfigError(f"a tool may not be named {FINAL_ACTION!r}: that name ends the episode")
    return registry


class _StepAgent(Agent[_Episode, Any]):
    """One step of the loop: the transcript in, one action (under the union's schema) out."""

    def __init__(self, name: str, *, system: str, shots: Sequence[Message], **kw: Any) -> None:
        super().__init__(name, instructions=system, input_type=_Episode, **kw)
        self._shots = tuple(shots)

    def messages(self, inp: _Episode) -> tuple[Message, ...]:
        msgs = [Message(role="system", content=self.instructions), *self._shots, Message(role="user", content=inp.task)]
        for turn in inp.turns:
            msgs.append(Message(role="assistant", content=turn.reply))
            msgs.append(Message(role="user", content=turn.observation))
        return tuple(msgs)


class ToolAgent(Agent[InT, OutT]):
    """An agent that may call ``tools`` (Tools, Verifiers or plain functions) before answering.

    ``max_steps`` bounds the model turns; running out raises :class:`ToolStepsExhausted`, unless
    ``final_on_last_step`` is set, in which case the last turn may only give the final answer.
    ``tool_choice="required"`` (as in OpenAI's API) makes the first turn a tool call: small models
    otherwise often answer from memory without looking anything up.
    """

    def __init__(
        self,
        name: str,
        *,
        instructions: str,
        tools: ToolRegistry | Iterable[Tool | Verifier | Callable[..., Any]],
        output_type: type[OutT],
        input_type: type[InT] | None = None,
        backend: Backend | None = None,
        sampling: Sampling | None = None,
        prompt: Callable[[InT], str] | None = None,
        examples: Sequence[ToolExample] = (),
        retry: Retry | None = None,
        max_steps: int = 4,
        final_on_last_step: bool = False,
        tool_choice: Literal["auto", "required"] = "auto",
        max_observation_chars: int = 600,
    ) -> None:
        super().__init__(
            name,
            instructions=instructions,
            output_type=output_type,
            input_type=input_type,
            backend=backend,
            sampling=sampling,
            prompt=prompt,
            retry=retry,
        )
        if max_steps < 1:
            raise ConfigError(f"tool agent {name!r}: max_steps must be >= 1, got {max_steps}")
        if tool_choice not in ("auto", "required"):
            raise ConfigError(f"tool agent {name!r}: tool_choice must be 'auto' or 'required', got {tool_choice!r}")
        if tool_choice == "required" and final_on_last_step and max_steps < 2:
            raise ConfigError(f"tool agent {name!r}: tool_choice='required' and final_on_last_step need max_steps >= 2")
        self.tools = _registry(tools)
        self.max_steps = max_steps
        self.final_on_last_step = final_on_last_step
        self.max_observation_chars = max_observation_chars
        self.tool_choice = tool_choice
        self.tool_examples = list(examples)
        self._variants = {t.name: _call_variant(t) for t in self.tools}
        self._final = _final_variant(output_type)
        self.step_type = _one_of([*self._variants.values(), self._final])
        common = {"system": self._system_prompt(), "shots": self._example_messages(examples), "sampling": self.sampling}

        def step_agent(output: type[BaseModel]) -> _StepAgent:
            return _StepAgent(name, output_type=output, retry=self.retry, **common)

        self._step = step_agent(self.step_type)
        self._first = step_agent(_one_of(list(self._variants.values()))) if tool_choice == "required" else None
        self._last = step_agent(self._final) if final_on_last_step else None

    # -- prompt --------------------------------------------------------------------------------

    def _system_prompt(self) -> str:
        lines = [self.instructions, "Tools:"]
        for t in self.tools:
            lines.append(f"- {t.name}: {t.description} Arguments: {_shape(t.args_model)}")
        lines.append(
            'Reply with one JSON object per turn: {"action": "<tool name>", "args": {...}} calls a tool and '
            f'its result comes back to you; {{"action": "{FINAL_ACTION}", "answer": {_shape(self.output_type)}}} '
            "finishes."
        )
        return "\n".join(lines)

    def _example_messages(self, examples: Sequence[ToolExample]) -> list[Message]:
        msgs: list[Message] = []
        for i, ex in enumerate(examples):
            msgs.append(Message(role="user", content=self.prompt(ex.input)))  # type: ignore[arg-type]
            for tool_name, args in ex.calls:
                if tool_name not in self._variants:
                    raise ConfigError(
                        f"tool agent {self.name!r}: example {i} calls unknown tool {tool_name!r}; "
                        f"tools are {self.tools.names()}"
                    )
                try:
                    call = self._variants[tool_name].model_validate({"action": tool_name, "args": args})
                    observation = self._observe(self.tools.get(tool_name).call(args))
                except (ToolError, ValueError) as exc:
                    raise ConfigError(
                        f"tool agent {self.name!r}: example {i} call to {tool_name!r} failed: {exc}"
                    ) from None
                msgs.append(Message(role="assistant", content=call.model_dump_json(by_alias=True)))
                msgs.append(Message(role="user", content=observation))
            answer = self._final.model_validate({"action": FINAL_ACTION, "answer": ex.output.model_dump()})
            msgs.append(Message(role="assistant", content=answer.model_dump_json(by_alias=True)))
        return msgs

    def _observe(self, value: Any) -> str:
        return "Result: " + _clip(_render(value), self.max_observation_chars)

    def _agent_for(self, turn: int) -> _StepAgent:
        """Which actions turn ``turn`` may take: a tool call first if required, the answer last if forced."""
        if turn == 0 and self._first is not None:
            return self._first
        if turn == self.max_steps - 1 and self._last is not None:
            return self._last
        return self._step

    def request(self, inp: InT, *, n: int | None = None, sampling: Sampling | None = None) -> GenerationRequest:
        """The first turn's request (later turns append the replies and observations)."""
        return self._agent_for(0).request(_Episode(task=self.prompt(inp)), n=n, sampling=sampling)

    def messages(self, inp: InT) -> tuple[Message, ...]:
        return self.request(inp).messages

    # -- the loop ------------------------------------------------------------------------------

    async def arun(  # type: ignore[override]
        self,
        inp: InT | dict[str, Any],
        *,
        backend: Backend | None = None,
        n: int | None = None,
        retry: Retry | None = None,
    ) -> ToolAgentResult[OutT]:
        if n not in (None, 1):
            raise ConfigError(f"tool agent {self.name!r} runs one episode at a time; n must be 1, got {n}")
        backend = backend if backend is not None else self.backend  # `or` would skip an empty ReplayBackend
        if backend is None:
            raise ConfigError(
                f"tool agent {self.name!r} has no backend; pass backend= to the ToolAgent or to Graph.compile"
            )
        episode = _Episode(task=self.prompt(self.coerce_input(inp)))  # type: ignore[arg-type]
        result = ToolAgentResult[self.output_type](outputs=[])  # type: ignore[name-defined]
        with self._episode_span(backend) as span:
            try:
                for i in range(self.max_steps):
                    output = await self._turn(self._agent_for(i), episode, backend, retry, result)
                    if output is not None:
                        result.outputs = [output]
                        return result
                calls = ", ".join(s.action for s in result.steps)
                raise ToolStepsExhausted(
                    f"tool agent {self.name!r} took {self.max_steps} steps without a final answer ({calls}); "
                    "raise max_steps, add a worked example, or set final_on_last_step=True",
                    steps=result.steps,
                )
            finally:
                if span.is_recording():
                    span.set_attributes(
                        {
                            "agentkit.tool_agent.steps": len(result.steps),
                            "agentkit.tool_agent.tool_calls": result.tool_calls,
                            "agentkit.tool_agent.tool_errors": result.tool_errors,
                            "agentkit.tool_agent.invalid_steps": result.invalid_steps,
                        }
                    )

    def _episode_span(self, backend: Backend) -> AbstractContextManager[Span]:
        """The episode's ``invoke_agent`` span: the graph node's own when run as a node, else a new one.

        Either way it is an agent span with a token rollup, so its ``gen_ai.usage.*`` count every
        turn once; the episode's facts (``agentkit.tool_agent.*``) are added at the end.
        """
        node = tracing.current_agent_span()
        if node is None:
            return tracing.agent_span(self.name, provider=backend.provider, model=backend.model, kind="tool_agent")
        if node.is_recording():
            node.set_attribute("agentkit.node.kind", "tool_agent")
        return nullcontext(node)

    async def _turn(
        self, agent: _StepAgent, episode: _Episode, backend: Backend, retry: Retry | None, result: ToolAgentResult[Any]
    ) -> BaseModel | None:
        """Run one model turn; return the final answer, or None after appending the observation."""
        try:
            generated = await agent.arun(episode, backend=backend, retry=retry)
        except SchemaViolation as exc:  # a reply cut by max_tokens, or a backend that ignored the schema
            observation = f"Error: that reply was not a valid action ({exc}). Reply with one JSON object."
            result.invalid_steps += 1
            result.violations.append(str(exc))
            result.steps.append(
                ToolStep(action="invalid", reply=exc.text or "", observation=observation, error=str(exc))
            )
            episode.turns.append(_Turn(reply=exc.text or "", observation=observation))
            return None
        result.usage = result.usage + generated.usage
        result.latency_s += generated.latency_s
        result.model = generated.model
        result.finish_reasons.extend(generated.finish_reasons)
        step = generated.output
        action = getattr(step, "root", step)
        reply = action.model_dump_json(by_alias=True)
        if action.action == FINAL_ACTION:
            result.steps.append(ToolStep(action=FINAL_ACTION, reply=reply))
            return action.answer  # type: ignore[no-any-return]
        args = action.args.model_dump(by_alias=True)
        result.tool_calls += 1
        try:
            observation, error = self._observe(await self.tools.get(action.action).acall(args)), None
        except ToolError as exc:
            result.tool_errors += 1
            observation, error = f"Error: {_clip(str(exc), self.max_observation_chars)}", str(exc)
        result.steps.append(
            ToolStep(action=action.action, args=args, reply=reply, observation=observation, error=error)
        )
        episode.turns.append(_Turn(reply=reply, observation=observation))
        return None

    def run(
        self, inp: InT | dict[str, Any], *, backend: Backend | None = None, n: int | None = None
    ) -> ToolAgentResult[OutT]:  # type: ignore[override]
        return super().run(inp, backend=backend, n=n)  # type: ignore[return-value]
