"""Tools: typed arguments, validation errors, registry, async calls, tracing, the calculator."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from pathlib import Path
from typing import Annotated, Literal

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import BaseModel, Field

from agentkit.errors import ConfigError, ToolError
from agentkit.tools import (
    Tool,
    ToolArgumentError,
    ToolRegistry,
    ToolSpec,
    calculator,
    format_exact,
    tool,
)

ROOT = Path(__file__).resolve().parents[2]
SENTINEL = Path("/tmp/AK_SENTINEL")


class Point(BaseModel):
    x: float
    y: float


@tool
def distance(a: Point, b: Point, metric: Literal["euclid", "manhattan"] = "euclid") -> float:
    """Distance between two points.

    Longer explanation that is not part of the description.

    Args:
        a: the first point.
        b (Point): the second point,
            given as {x, y}.
        metric: how to measure.

    Returns:
        The distance.
    """
    if metric == "manhattan":
        return abs(a.x - b.x) + abs(a.y - b.y)
    return ((a.x - b.x) ** 2 + (a.y - b.y) ** 2) ** 0.5


# --------------------------------------------------------------------------------- the Tool
def test_tool_from_a_function() -> None:
    assert isinstance(distance, Tool)
    assert distance.name == "distance"
    assert distance.description == "Distance between two points."
    schema = distance.json_schema()
    assert schema["required"] == ["a", "b"]
    assert schema["additionalProperties"] is False
    props = schema["properties"]
    assert props["metric"]["enum"] == ["euclid", "manhattan"] and props["metric"]["default"] == "euclid"
    assert props["b"]["description"] == "the second point, given as {x, y}."
    assert "Returns" not in str(schema)
    spec = distance.spec()
    assert isinstance(spec, ToolSpec) and spec.parameters == schema


def test_calls_validate_and_coerce_arguments() -> None:
    assert distance(a=Point(x=0, y=0), b=Point(x=3, y=4)) == 5.0
    args = {"a": {"x": 0, "y": 0}, "b": {"x": "3", "y": 4}, "metric": "manhattan"}
    assert distance.call(args) == 7.0
    # JSON text, as a model writes it
    assert distance.call('{"a": {"x": 0, "y": 0}, "b": {"x": 3, "y": 4}}') == 5.0


@pytest.mark.parametrize(
    ("args", "field", "message"),
    [
        (
            {"a": {"x": 0, "y": 0}, "b": {"x": "three", "y": 4}},
            "b",
            r"argument 'b\.x': Input should be a valid number.*'three'",
        ),
        ({"a": {"x": 0, "y": 0}}, "b", "missing required argument 'b'"),
        ({"a": {"x": 0, "y": 0}, "b": {"x": 0, "y": 0}, "c": 1}, "c", "unexpected argument 'c'"),
        (
            {"a": {"x": 0, "y": 0}, "b": {"x": 0, "y": 0}, "metric": "cosine"},
            "metric",
            "argument 'metric'.*'euclid' or 'manhattan'",
        ),
    ],
)
def test_validation_failures_name_tool_field_and_expectation(args: dict, field: str, message: str) -> None:
    with pytest.raises(ToolArgumentError, match=message) as info:
        distance.call(args)
    err = info.value
    assert isinstance(err, ToolError)
    assert str(err).startswith("tool 'distance'")
    assert err.tool == "distance" and err.field == field


@pytest.mark.parametrize("args", ["[1, 2]", "{not json", 42, ["a"]])
def test_arguments_must_be_an_object(args: object) -> None:
    with pytest.raises(ToolArgumentError, match="tool 'distance'"):
        distance.call(args)  # type: ignore[arg-type]


def test_tool_exceptions_become_tool_errors_naming_the_tool() -> None:
    @tool
    def divide(a: int, b: int) -> float:
        """Divide."""
        return a / b

    with pytest.raises(ToolError, match="tool 'divide' failed: ZeroDivisionError") as info:
        divide(a=1, b=0)
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert not isinstance(info.value, ToolArgumentError)

    @tool
    def picky() -> None:
        raise ToolError("picky says no")

    with pytest.raises(ToolError, match="^picky says no$"):
        picky()


def test_tool_decorator_options_and_bad_definitions() -> None:
    @tool(name="shout", description="Upper-case text.")
    def _upper(text: Annotated[str, Field(max_length=5)]) -> str:
        return text.upper()

    assert (_upper.name, _upper.description) == ("shout", "Upper-case text.")
    assert _upper(text="hi") == "HI"
    with pytest.raises(ToolArgumentError, match="at most 5 characters"):
        _upper(text="too long")

    @tool
    def undocumented(n):  # type: ignore[no-untyped-def]
        return n

    assert undocumented.description == "" and undocumented(n=[1]) == [1]

    with pytest.raises(ConfigError, match="not valid"):
        tool(name="has space")(lambda: 1)
    with pytest.raises(ConfigError, match="variadic|named parameters"):
        tool(lambda *args: 1, name="variadic")
    with pytest.raises(ConfigError, match="named parameters"):
        tool(lambda **kw: 1, name="kw")


def test_parameters_named_like_model_attributes() -> None:
    @tool
    def dump(json: str, schema: int = 1) -> str:
        """Parameters called json/schema must not clash with pydantic."""
        return f"{json}:{schema}"

    assert dump.call({"json": "x", "schema": 2}) == "x:2"
    assert set(dump.json_schema()["properties"]) == {"json", "schema"}


# ------------------------------------------------------------------------------------ async
def test_acall_runs_sync_tools_in_a_worker_thread() -> None:
    @tool
    def where() -> int:
        return threading.get_ident()

    assert asyncio.run(where.acall()) != threading.get_ident()


def test_async_tools() -> None:
    @tool
    async def later(x: int) -> int:
        """Async tool."""
        await asyncio.sleep(0)
        return x * 2

    assert later.is_async
    assert asyncio.run(later.acall({"x": "21"})) == 42
    assert later(x=2) == 4  # no loop running: run to completion

    async def inside_a_loop() -> None:
        with pytest.raises(ToolError, match="acall"):
            later(x=1)

    asyncio.run(inside_a_loop())

    @tool
    async def broken() -> None:
        raise ValueError("nope")

    with pytest.raises(ToolError, match="tool 'broken' failed: ValueError: nope"):
        asyncio.run(broken.acall())


# --------------------------------------------------------------------------------- registry
def test_registry() -> None:
    tools = ToolRegistry([calculator])

    @tools.tool
    def add(a: int, b: int = 2) -> int:
        """Add two integers."""
        return a + b

    @tools.tool(name="mul")
    def multiply(a: int, b: int) -> int:
        """Multiply two integers."""
        return a * b

    assert isinstance(add, Tool) and add(a=1) == 3
    assert tools.names() == ["calculator", "add", "mul"]
    assert [t.name for t in tools] == ["calculator", "add", "mul"]
    assert len(tools) == 3 and "mul" in tools and "multiply" not in tools
    assert tools.call("mul", {"a": 6, "b": "7"}) == 42
    assert asyncio.run(tools.acall("add", {"a": 1, "b": 1})) == 2
    assert tools.get("add") is add
    schemas = tools.schemas()
    assert [s["name"] for s in schemas] == ["calculator", "add", "mul"]
    assert schemas[1] == {
        "name": "add",
        "description": "Add two integers.",
        "parameters": add.json_schema(),
    }
    with pytest.raises(ToolError, match=r"unknown tool 'div'; registered tools: add, calculator, mul"):
        tools.call("div", {})
    with pytest.raises(ConfigError, match="already registered"):
        tools.add(add)
    assert "add" not in ToolRegistry()  # registries are independent: no global state
    with pytest.raises(ToolError, match="registered tools: none"):
        ToolRegistry().get("add")


# ---------------------------------------------------------------------------------- tracing
def test_each_call_is_an_execute_tool_span(spans: InMemorySpanExporter) -> None:
    calculator(expression="1+1")
    with pytest.raises(ToolError):
        calculator(expression="1/0")
    with pytest.raises(ToolArgumentError):
        calculator.call({})
    ok, failed, invalid = spans.get_finished_spans()
    assert ok.name == "execute_tool calculator"
    assert ok.attributes["gen_ai.operation.name"] == "execute_tool"
    assert ok.attributes["gen_ai.tool.name"] == "calculator"
    assert "error.type" not in ok.attributes
    assert failed.attributes["error.type"] == "ToolError"
    assert invalid.attributes["error.type"] == "ToolArgumentError"


def test_async_call_is_traced(spans: InMemorySpanExporter) -> None:
    asyncio.run(calculator.acall({"expression": "2*3"}))
    (span,) = spans.get_finished_spans()
    assert span.name == "execute_tool calculator"


# ------------------------------------------------------------------------------- calculator
@pytest.mark.parametrize(
    ("expression", "result"),
    [
        ("48 / 2", "24"),
        ("2 ** 10", "1024"),
        ("3 / 4", "0.75 (3/4)"),
        ("1 / 3", "≈0.333333333333 (1/3)"),
        ("-7 / 2", "-3.5 (-7/2)"),
        ("0.1 + 0.2", "0.3 (3/10)"),
        ("10 ** 14 / 3", "≈33333333333333.3333 (100000000000000/3)"),
        ("10 ** 20 / 3", "≈3.33333333333E+19 (100000000000000000000/3)"),
        ("3 / 10 ** 7", "3E-7 (3/10000000)"),
        ("1 / 1024", "0.0009765625 (1/1024)"),
        ("16 ** 0.5", "4"),
    ],
)
def test_calculator(expression: str, result: str) -> None:
    assert calculator(expression=expression) == result
    assert calculator.call({"expression": expression}) == result


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("1 / 0", "division by zero"),
        ("2 ** 0.5", "irrational"),
        ("9**9**9", "exceed"),
        ("__import__('os').system('touch /tmp/AK_SENTINEL')", "unexpected character '_' at position 0"),
    ],
)
def test_calculator_errors_are_tool_errors(expression: str, message: str) -> None:
    with pytest.raises(ToolError, match=f"tool 'calculator' failed: Arithmetic.*{message}"):
        calculator(expression=expression)
    assert not SENTINEL.exists()


def test_calculator_rejects_oversized_input_before_parsing() -> None:
    with pytest.raises(ToolArgumentError, match="expression"):
        calculator(expression="1" * 1_000_000)
    with pytest.raises(ToolArgumentError, match="expression"):
        calculator(expression="")


def test_format_exact_round_trips() -> None:
    from fractions import Fraction

    values = (Fraction(1, 7), Fraction(-22, 7), Fraction(5, 8), Fraction(10**30 + 1, 10**15))
    for value in (*values, Fraction(1, 2**9990), Fraction(-(2**9990), 3)):
        text = format_exact(value)
        assert len(text.split(" (")[0]) < 30  # the decimal part stays short, whatever the size
        assert Fraction(text.rsplit("(", 1)[1].rstrip(")")) == value


def test_custom_tool_example_runs() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "custom_tool.py")],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,  # it runs the real SmolLM2
    )
    assert result.returncode == 0, result.stderr
    assert "graph node -> price 4.5" in result.stdout
    # tool_choice="required": SmolLM2's first step is a well-formed unit_price call, answered by the tool
    assert '{"action":"unit_price","args":{"total":18.0,"quantity":4}} Result: 4.5' in result.stdout
    assert "answer -> " in result.stdout
