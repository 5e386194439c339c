"""Tools agents can call (``agentkit.tools``): the Tool type, a per-graph registry, a calculator."""

from agentkit.tools.base import Tool, ToolArgumentError, ToolRegistry, ToolSpec, tool
from agentkit.tools.calculator import calculator, format_exact

__all__ = ["Tool", "ToolArgumentError", "ToolRegistry", "ToolSpec", "calculator", "format_exact", "tool"]
