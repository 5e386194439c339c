"""Tools: plain Python functions an agent may call, with arguments typed and validated by pydantic.

A model's tool call is untrusted input, so every call validates its arguments against a pydantic
model built from the function's signature before the function runs; a bad call is a
:class:`ToolArgumentError` that names the tool, the argument and what was expected — text you can
hand back to the model so it can retry. Whatever the function itself raises becomes a
:class:`~agentkit.errors.ToolError` naming the tool. Each call is one ``execute_tool {name}`` span.

There is no global registry: create a :class:`ToolRegistry` per agent or graph, so two graphs in
one process never see each other's tools.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import re
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, overload

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from agentkit.errors import ConfigError, ToolError
from agentkit.tracing import tool_span

__all__ = ["Tool", "ToolArgumentError", "ToolRegistry", "ToolSpec", "tool"]

_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # what OpenAI-style function calling accepts


class ToolArgumentError(ToolError):
    """A tool was called with arguments that do not validate; nothing was executed."""

    def __init__(self, message: str, *, tool: str, field: str | None = None) -> None:
        super().__init__(message)
        self.tool = tool
        self.field = field


class ToolSpec(BaseModel):
    """What an agent is shown about a tool (the provider-neutral function-calling schema)."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str
    parameters: dict[str, Any]


# ------------------------------------------------------------------------- signature -> model
def _doc_summary(doc: str | None) -> str:
    lines = inspect.cleandoc(doc).strip().splitlines() if doc else []
    return lines[0].strip() if lines else ""


_SECTION_RE = re.compile(r"^(Args|Arguments|Parameters|Params)\s*:\s*$")
_ARG_LINE_RE = re.compile(r"^(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


def _doc_arguments(doc: str | None) -> dict[str, str]:
    """Per-argument descriptions from a Google-style ``Args:`` section (models read these)."""
    if not doc:
        return {}
    found: dict[str, str] = {}
    in_section, current, base_indent = False, None, None
    for line in inspect.cleandoc(doc).splitlines():
        stripped = line.strip()
        if _SECTION_RE.match(stripped) and not line.startswith((" ", "\t")):
            in_section, current, base_indent = True, None, None
            continue
        if not in_section:
            continue
        if not stripped:
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0:  # the next section (Returns:, Raises:, ...)
            in_section = False
            continue
        m = _ARG_LINE_RE.match(stripped)
        if m and (base_indent is None or indent <= base_indent):
            base_indent = indent
            current = m.group(1)
            found[current] = m.group(2).strip()
        elif current is not None:
            found[current] = f"{found[current]} {stripped}".strip()
    return found


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[_\-]+", name) if part) or "Tool"


def _build_args_model(fn: Callable[..., Any], tool_name: str) -> type[BaseModel]:
    try:
        sig = inspect.signature(fn)
        hints = typing.get_type_hints(fn, include_extras=True)
    except (TypeError, ValueError, NameError) as exc:
        raise ConfigError(f"tool {tool_name!r}: cannot read the signature of {fn!r}: {exc}") from exc
    described = _doc_arguments(fn.__doc__)
    fields: dict[str, Any] = {}
    for param in sig.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            raise ConfigError(
                f"tool {tool_name!r}: parameter {param.name!r} is {param.kind.description}; tool "
                "arguments arrive by name, so use ordinary named parameters"
            )
        annotation = hints.get(param.name, Any)
        default = ... if param.default is param.empty else param.default
        # A parameter named like a BaseModel attribute (json, copy, schema) gets a private field
        # name and keeps its real name as the alias, which is what validation and schemas use.
        field_name = param.name
        if hasattr(BaseModel, field_name) or field_name.startswith("_"):
            field_name = f"arg_{param.name.lstrip('_')}"
        fields[field_name] = (
            annotation,
            Field(default, alias=param.name, description=described.get(param.name)),
        )
    try:
        return create_model(  # type: ignore[call-overload,no-any-return]
            f"{_camel(tool_name)}Args",
            __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=True, populate_by_name=False),
            **fields,
        )
    except Exception as exc:  # pydantic cannot build a schema for some annotation
        raise ConfigError(f"tool {tool_name!r}: cannot build an argument model: {exc}") from exc


def _describe_validation(tool_name: str, exc: ValidationError) -> ToolArgumentError:
    problems: list[str] = []
    first_field: str | None = None
    for err in exc.errors(include_url=False):
        loc = ".".join(str(part) for part in err.get("loc", ())) or "(arguments)"
        first_field = first_field or (str(err["loc"][0]) if err.get("loc") else None)
        if err["type"] == "missing":
            problems.append(f"missing required argument {loc!r}")
        elif err["type"] == "extra_forbidden":
            problems.append(f"unexpected argument {loc!r}")
        else:
            problems.append(f"argument {loc!r}: {err['msg']} (got {err.get('input')!r:.80})")
    return ToolArgumentError(
        f"tool {tool_name!r} called with invalid arguments: " + "; ".join(problems),
        tool=tool_name,
        field=first_field,
    )


# -------------------------------------------------------------------------------------- Tool
class Tool:
    """A function made callable by an agent: typed arguments, a JSON schema, tracing.

    Call it like the function with keyword arguments (``calc(expression="1+1")``), or with an
    argument mapping / JSON object string as a model produces (``calc.call({"expression": ...})``).
    ``acall`` is the async form; a sync function then runs in a worker thread.
    """

    def __init__(
        self, fn: Callable[..., Any], *, name: str | None = None, description: str | None = None
    ) -> None:
        if not callable(fn):
            raise ConfigError(f"a tool wraps a callable, got {type(fn).__name__}")
        tool_name = name or getattr(fn, "__name__", "")
        if not _NAME_RE.match(tool_name):
            raise ConfigError(
                f"tool name {tool_name!r} is not valid: use 1-64 letters, digits, '_' or '-'"
            )
        self.fn = fn
        self.name = tool_name
        self.description = description if description is not None else _doc_summary(fn.__doc__)
        self.args_model: type[BaseModel] = _build_args_model(fn, tool_name)
        self.is_async = inspect.iscoroutinefunction(fn)
        functools.update_wrapper(self, fn, assigned=("__module__", "__doc__", "__qualname__"), updated=())

    # -- arguments
    def validate(self, args: Mapping[str, Any] | str | None = None) -> dict[str, Any]:
        """Validated keyword arguments for the function, or ToolArgumentError."""
        if args is None:
            args = {}
        if isinstance(args, str | bytes):
            try:
                args = json.loads(args)
            except ValueError as exc:
                raise ToolArgumentError(
                    f"tool {self.name!r}: arguments are not valid JSON ({exc})", tool=self.name
                ) from None
        if not isinstance(args, Mapping):
            raise ToolArgumentError(
                f"tool {self.name!r}: arguments must be an object of named arguments, got "
                f"{type(args).__name__}",
                tool=self.name,
            )
        try:
            model = self.args_model.model_validate(dict(args))
        except ValidationError as exc:
            raise _describe_validation(self.name, exc) from None
        return {
            (info.alias or field): getattr(model, field)
            for field, info in type(model).model_fields.items()
        }

    def json_schema(self) -> dict[str, Any]:
        """JSON schema of the arguments object."""
        return self.args_model.model_json_schema()

    def spec(self) -> ToolSpec:
        return ToolSpec(name=self.name, description=self.description, parameters=self.json_schema())

    # -- calling
    def _failure(self, exc: Exception) -> ToolError:
        return ToolError(f"tool {self.name!r} failed: {type(exc).__name__}: {exc}")

    def _span(self) -> Any:
        return tool_span(self.name, {"gen_ai.tool.description": self.description or None})

    def call(self, args: Mapping[str, Any] | str | None = None) -> Any:
        """Validate ``args`` and run the tool (an async tool is run to completion here)."""
        with self._span():
            kwargs = self.validate(args)
            if self.is_async:
                try:
                    asyncio.get_running_loop()
                except RuntimeError:
                    pass
                else:
                    raise ToolError(
                        f"tool {self.name!r} is async and an event loop is running: "
                        "use `await tool.acall(...)`"
                    )
            try:
                result = self.fn(**kwargs)
                if self.is_async:
                    result = asyncio.run(result)
            except ToolError:
                raise
            except Exception as exc:
                raise self._failure(exc) from exc
            return result

    def __call__(self, **kwargs: Any) -> Any:
        return self.call(kwargs)

    async def acall(self, args: Mapping[str, Any] | str | None = None) -> Any:
        """Async call: awaits an async tool, runs a sync one in a worker thread."""
        with self._span():
            kwargs = self.validate(args)
            try:
                if self.is_async:
                    return await self.fn(**kwargs)
                return await asyncio.to_thread(self.fn, **kwargs)
            except ToolError:
                raise
            except Exception as exc:
                raise self._failure(exc) from exc

    def __repr__(self) -> str:
        return f"Tool(name={self.name!r})"


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...
@overload
def tool(
    *, name: str | None = None, description: str | None = None
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Make a :class:`Tool` from a function: ``@tool`` or ``@tool(name=..., description=...)``.

    The description defaults to the docstring's first line; ``Args:`` entries describe arguments.
    """
    if fn is not None:
        return Tool(fn, name=name, description=description)
    return lambda f: Tool(f, name=name, description=description)


# --------------------------------------------------------------------------------- registry
class ToolRegistry:
    """The tools one agent or graph may call, by name."""

    def __init__(self, tools: Iterable[Tool | Callable[..., Any]] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for t in tools:
            self.add(t)

    def add(self, t: Tool | Callable[..., Any]) -> Tool:
        """Register a Tool (or a plain function, wrapped); a second tool with the same name is an error."""
        t = t if isinstance(t, Tool) else Tool(t)
        if t.name in self._tools:
            raise ConfigError(f"a tool named {t.name!r} is already registered")
        self._tools[t.name] = t
        return t

    @overload
    def tool(self, fn: Callable[..., Any], /) -> Tool: ...
    @overload
    def tool(
        self, *, name: str | None = None, description: str | None = None
    ) -> Callable[[Callable[..., Any]], Tool]: ...

    def tool(
        self,
        fn: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        description: str | None = None,
    ) -> Tool | Callable[[Callable[..., Any]], Tool]:
        """Decorator registering a function as a tool; returns the Tool."""
        if fn is not None:
            return self.add(Tool(fn, name=name, description=description))
        return lambda f: self.add(Tool(f, name=name, description=description))

    def get(self, name: str) -> Tool:
        try:
            return self._tools[name]
        except KeyError:
            known = ", ".join(sorted(self._tools)) or "none"
            raise ToolError(f"unknown tool {name!r}; registered tools: {known}") from None

    def call(self, name: str, args: Mapping[str, Any] | str | None = None) -> Any:
        return self.get(name).call(args)

    async def acall(self, name: str, args: Mapping[str, Any] | str | None = None) -> Any:
        return await self.get(name).acall(args)

    def schemas(self) -> list[dict[str, Any]]:
        """``[{"name", "description", "parameters"}, ...]`` for every tool, in registration order."""
        return [t.spec().model_dump() for t in self._tools.values()]

    def names(self) -> list[str]:
        return list(self._tools)

    def __iter__(self) -> Iterator[Tool]:
        return iter(list(self._tools.values()))

    def __len__(self) -> int:
        return len(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __repr__(self) -> str:
        return f"ToolRegistry({self.names()!r})"
