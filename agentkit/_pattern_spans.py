"""Span attribute names that belong to one pattern, kept out of the tracing core.

The core (:mod:`agentkit.tracing`) names only what the runtime itself records: votes of a
``Tally`` reducer, verifier verdicts, grammar compilation. A pattern's own facts are named by the
pattern; the cascade's live here because :mod:`agentkit.tracing` re-exports them for code written
before they moved (``tracing.CASCADE_TIER``), and the tracing core may not import a pattern module.
"""

from __future__ import annotations

__all__ = ["CASCADE_ESCALATION_REASON", "CASCADE_TIER"]

CASCADE_TIER = "agentkit.cascade.tier"
CASCADE_ESCALATION_REASON = "agentkit.cascade.escalation_reason"
