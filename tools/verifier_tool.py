"""Offer a verifier to an agent as a tool, so a model can check its own work before answering.

The agent writes the candidate (text by default, or a typed object such as FOL premises and a
conclusion); the tool answers with the verifier's :class:`~agentkit.verifiers.base.Verdict`.
Context the model must not choose (a gold label, a timeout) is bound when the tool is made.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agentkit.errors import ConfigError
from agentkit.tools.base import Tool
from agentkit.verifiers.base import Verdict, Verifier

__all__ = ["verifier_tool"]


def verifier_tool(
    verifier: Verifier,
    *,
    name: str | None = None,
    description: str | None = None,
    candidate_type: Any = str,
    candidate_description: str = "what to check",
    context: Mapping[str, Any] | None = None,
) -> Tool:
    """A Tool with one argument, ``candidate`` (of ``candidate_type``), returning a Verdict."""
    if not isinstance(verifier, Verifier):
        raise ConfigError(f"verifier_tool needs a Verifier (name, hard, verify), got {type(verifier).__name__}")
    bound = dict(context or {})

    def check(candidate: Any) -> Verdict:
        return verifier.verify(candidate, dict(bound))

    check.__annotations__ = {"candidate": candidate_type, "return": Verdict}
    check.__doc__ = f"Check a candidate.\n\nArgs:\n    candidate: {candidate_description}\n"
    summary = (
        description or f"Check a candidate with the {verifier.name!r} verifier; replies with ok, label and reason."
    )
    return Tool(check, name=name or verifier.name, description=summary)
