"""Tools agents can call (``agentkit.tools``): the Tool type, a per-graph registry, a calculator,
faiss retrieval, and an adapter that offers a verifier as a tool."""

from agentkit.tools.base import Tool, ToolArgumentError, ToolRegistry, ToolSpec, tool
from agentkit.tools.calculator import calculator, format_exact
from agentkit.tools.retrieval import Document, Embedder, Hit, MiniLMEmbedder, RetrievalIndex, retrieval_tool
from agentkit.tools.verifier_tool import verifier_tool

__all__ = [
    "Document",
    "Embedder",
    "Hit",
    "MiniLMEmbedder",
    "RetrievalIndex",
    "Tool",
    "ToolArgumentError",
    "ToolRegistry",
    "ToolSpec",
    "calculator",
    "format_exact",
    "retrieval_tool",
    "tool",
    "verifier_tool",
]
