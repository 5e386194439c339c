"""First-order logic verifier: parse FOLIO-syntax formulas and decide entailment with z3.

This is the symbolic half of LINC-style pipelines: a small model translates natural-language
premises into FOL, and the prover, not the model, decides whether the conclusion follows.
Model text is only ever *parsed* (``agentkit.verifiers._fol_parse``), never evaluated.

Public API
----------
* :func:`entails` → ``"True" | "False" | "Uncertain"`` (the DESIGN contract).
* :func:`check` → :class:`FOLResult` with the label *and* why (timeout, inconsistent premises, ...).
* :class:`FOLVerifier` — the Verifier-protocol wrapper; a syntax error is a verdict, not a crash.
* :func:`parse` / :func:`to_str` and the AST classes; :class:`FOLSyntaxError`.
* :func:`fol_grammar` for guided decoding (LINC's whole-program grammar, sentence by sentence, is
  built from it in ``agentkit.graphs.linc``).

See ``_fol_parse`` for the accepted syntax (unicode and Prover9 ASCII, operator binding,
quantifier scope, what a name may contain, predicates keyed by name and arity).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from agentkit.errors import ConfigError
from agentkit.tracing import VERIFIER_VERDICT, tool_span
from agentkit.verifiers._fol_grammar import fol_grammar
from agentkit.verifiers._fol_parse import (
    MAX_CHARS,
    MAX_DEPTH,
    And,
    Atom,
    Const,
    Exists,
    FOLSyntaxError,
    ForAll,
    Formula,
    Iff,
    Implies,
    Not,
    Or,
    Term,
    Var,
    Xor,
    grammar_depth,
    parse,
    to_str,
)
from agentkit.verifiers._fol_z3 import decide
from agentkit.verifiers.base import Verdict, VerifierBase

__all__ = [
    "FOLResult",
    "FOLSyntaxError",
    "FOLVerifier",
    "MAX_CHARS",
    "MAX_DEPTH",
    "And",
    "Atom",
    "Const",
    "Exists",
    "ForAll",
    "Formula",
    "Iff",
    "Implies",
    "Not",
    "Or",
    "Term",
    "Var",
    "Xor",
    "check",
    "grammar_depth",
    "entails",
    "fol_grammar",
    "parse",
    "to_str",
]

_TOOL = "fol_prover"


class FOLResult(BaseModel):
    """The prover's answer plus the reason a human (or a retrying model) needs.

    ``label`` "True" also covers inconsistent premises (they entail everything); ``reason``
    says so and ``premises_consistent`` is False, so callers can refuse such "proofs".
    ``timed_out`` is set when z3 hit ``timeout_s``; ``conclusive`` is False when the label is
    "Uncertain" only because z3 timed out or gave up (rather than finding models both ways).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: Literal["True", "False", "Uncertain"]
    reason: str
    timed_out: bool = False
    conclusive: bool = True
    premises_consistent: bool | None = None


def check(premises: Sequence[str], conclusion: str, timeout_s: float = 10.0) -> FOLResult:
    """Decide whether ``premises`` entail ``conclusion``, its negation, or neither.

    Every formula is parsed first, so a syntax error raises :class:`FOLSyntaxError` before any
    solving; a premise's error message says which premise it was. Each of the two z3 checks
    gets ``timeout_s`` (so the call takes at most about 2 × timeout_s); a timeout gives
    "Uncertain" with the reason saying so.
    """
    _check_timeout(timeout_s)
    if isinstance(premises, str):
        raise TypeError("premises must be a list of formula strings, not one string")
    premises = list(premises)
    with tool_span(
        _TOOL,
        {"agentkit.fol.premise_count": len(premises), "agentkit.fol.timeout_s": float(timeout_s)},
    ) as span:
        parsed = [_parse_premise(i, p) for i, p in enumerate(premises)]
        goal = _parse_labelled("conclusion", conclusion)
        outcome = decide(parsed, goal, float(timeout_s))
        result = FOLResult(
            label=outcome.label,
            reason=outcome.reason,
            timed_out=outcome.timed_out,
            conclusive=outcome.conclusive,
            premises_consistent=outcome.premises_consistent,
        )
        if span.is_recording():
            span.set_attribute(VERIFIER_VERDICT, result.label)
            span.set_attribute("agentkit.fol.timed_out", result.timed_out)
        return result


def entails(premises: list[str], conclusion: str, timeout_s: float = 10.0) -> str:
    """``"True"`` if premises ⊨ conclusion, ``"False"`` if premises ⊨ ¬conclusion, else ``"Uncertain"``.

    Inconsistent premises entail everything, so they give "True"; use :func:`check` to see that
    (and timeouts) in the reason.
    """
    return check(premises, conclusion, timeout_s).label


class FOLVerifier(VerifierBase):
    """Verifier-protocol wrapper around :func:`check` for LINC-style candidates.

    The candidate is a mapping or object with ``premises_fol`` (list of formulas) and
    ``conclusion_fol`` (also accepted: FOLIO's ``premises-FOL``/``conclusion-FOL`` keys), or a
    ``(premises, conclusion)`` tuple. Verdicts: ``ok=True`` and label True/False/Uncertain when
    the formulas parsed and the prover answered; ``ok=None`` (abstain) with label "Uncertain"
    when z3 timed out or gave up; ``ok=False`` with label "Error" on a syntax error, whose
    reason names the formula, position and token so a model can be asked to fix exactly that.
    ``context["timeout_s"]`` overrides the constructor's timeout for one call.
    """

    def __init__(self, name: str = "fol", *, hard: bool = True, timeout_s: float = 10.0) -> None:
        super().__init__(name, hard=hard)
        _check_timeout(timeout_s)
        self.timeout_s = timeout_s

    def check(self, candidate: Any, context: Mapping[str, Any]) -> Verdict:
        premises, conclusion = _unpack(candidate)
        timeout_s = context.get("timeout_s", self.timeout_s)
        try:
            result = check(premises, conclusion, timeout_s)
        except FOLSyntaxError as exc:
            return Verdict(ok=False, label="Error", reason=str(exc))
        return Verdict(ok=True if result.conclusive else None, label=result.label, reason=result.reason)


def _unpack(candidate: Any) -> tuple[Sequence[str], str]:
    if isinstance(candidate, tuple) and len(candidate) == 2:
        return candidate[0], candidate[1]
    if isinstance(candidate, Mapping):
        for pk, ck in (("premises_fol", "conclusion_fol"), ("premises-FOL", "conclusion-FOL")):
            if pk in candidate and ck in candidate:
                return candidate[pk], candidate[ck]
        raise TypeError(
            f"FOL candidate mapping needs 'premises_fol' and 'conclusion_fol' keys, got {sorted(candidate)!r}"
        )
    if hasattr(candidate, "premises_fol") and hasattr(candidate, "conclusion_fol"):
        return candidate.premises_fol, candidate.conclusion_fol
    raise TypeError(
        f"FOL candidate must have premises_fol and conclusion_fol, or be a (premises, conclusion) "
        f"tuple; got {type(candidate).__name__}"
    )


def _parse_premise(index: int, text: str) -> Formula:
    return _parse_labelled(f"premise {index}", text)


def _parse_labelled(label: str, text: str) -> Formula:
    try:
        return parse(text)
    except FOLSyntaxError as exc:
        raise FOLSyntaxError(
            f"{label}: {exc.problem}",
            position=exc.position,
            token=exc.token,
            formula=exc.formula,
            hint=exc.hint,
        ) from None


def _check_timeout(timeout_s: object) -> None:
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not timeout_s > 0:
        raise ConfigError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")
