"""Checks that catch degenerate FOL programs: ones a prover "decides" without any translation in them.

A guided parser always writes well-formed FOL, so the prover decides nearly every sample; that
measures syntax, not translation. A 135M parser was seen copying the conclusion into the premises
(the conclusion is then trivially entailed), repeating one premise line after line, and writing
premises that contradict each other (they entail everything, so the prover says "True"). Each of
these is a program the prover would score but that says nothing about the problem, so a pattern
can refuse it:

* ``conclusion_in_premises`` - a premise is the conclusion up to the renaming of bound variables
  (``∃x (P(x))`` and ``∃y (P(y))`` are the same claim);
* ``repeated_premise`` - a premise is, up to the same renaming, an earlier premise;
* ``inconsistent_premises`` - the premises alone are unsatisfiable (z3).

:func:`findings` lists them; :class:`DegenerateProgramVerifier` is the Verifier-protocol wrapper
(``ok=False`` with the first reason as its label). The comparison is deliberately strict: only
bound-variable names are abstracted, not the order of ∧/∨ operands or logical equivalence, so a
check never rejects a program that differs from the conclusion in anything the model wrote.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import z3
from pydantic import BaseModel, ConfigDict

from agentkit.verifiers._fol_parse import (
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
    Var,
    Xor,
    parse,
)
from agentkit.verifiers._fol_z3 import _Translator
from agentkit.verifiers.base import Verdict, VerifierBase
from agentkit.verifiers.fol import _unpack  # the one reader of FOL candidates

__all__ = [
    "DEGENERATE_REASONS",
    "DegenerateProgramVerifier",
    "DegenerateReason",
    "Finding",
    "alpha_equivalent",
    "alpha_key",
    "findings",
    "premises_satisfiable",
]

DegenerateReason = Literal["conclusion_in_premises", "repeated_premise", "inconsistent_premises"]
DEGENERATE_REASONS: tuple[DegenerateReason, ...] = ("conclusion_in_premises", "repeated_premise",
                                                    "inconsistent_premises")


class Finding(BaseModel):
    """One reason a program is degenerate; ``premise`` is the 0-based premise it points at, if any."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: DegenerateReason
    detail: str
    premise: int | None = None


def alpha_key(formula: Formula | str) -> tuple[Any, ...]:
    """A key equal for two formulas iff they are identical up to the names of bound variables.

    Bound variables become their binder's position counted outwards (de Bruijn indices), so
    ``∀x ∃y (R(x, y))`` and ``∀u ∃v (R(u, v))`` share a key and ``∀x ∃y (R(y, x))`` does not.
    """
    return _key(parse(formula) if isinstance(formula, str) else formula, ())


def alpha_equivalent(a: Formula | str, b: Formula | str) -> bool:
    return alpha_key(a) == alpha_key(b)


def _key(f: Formula, bound: tuple[str, ...]) -> tuple[Any, ...]:
    if isinstance(f, Atom):
        return ("atom", f.pred, tuple(_term(t, bound) for t in f.args))
    if isinstance(f, Not):
        return ("not", _key(f.arg, bound))
    if isinstance(f, (And, Or)):
        return (type(f).__name__, tuple(_key(a, bound) for a in f.args))
    if isinstance(f, (Xor, Implies, Iff)):
        return (type(f).__name__, _key(f.left, bound), _key(f.right, bound))
    if isinstance(f, (ForAll, Exists)):
        return (type(f).__name__, _key(f.body, (f.var, *bound)))
    raise TypeError(f"not a formula: {type(f).__name__}")


def _term(t: Var | Const, bound: tuple[str, ...]) -> tuple[str, object]:
    if isinstance(t, Var) and t.name in bound:
        return ("bound", bound.index(t.name))  # the innermost binder of that name
    return ("const", t.name)


def premises_satisfiable(premises: Sequence[Formula | str], timeout_s: float = 10.0) -> bool | None:
    """Whether the premises alone have a model: False means they are inconsistent; None, z3 gave up."""
    ctx = z3.Context()
    tr = _Translator(ctx)
    solver = z3.Solver(ctx=ctx)
    solver.set("timeout", max(1, round(timeout_s * 1000)))
    solver.add(*[tr.formula(parse(p) if isinstance(p, str) else p, {}) for p in premises])
    result = solver.check()
    return None if result == z3.unknown else result == z3.sat


def findings(
    premises: Sequence[str],
    conclusion: str,
    *,
    premises_consistent: bool | None = None,
    prove_consistency: bool = True,
    timeout_s: float = 10.0,
) -> list[Finding]:
    """Every degenerate trait of the program, in premise order (empty: nothing degenerate found).

    ``premises_consistent`` passes on what a prover run already established (LINC's two entailment
    checks are both unsat exactly when the premises are); when it is None and ``prove_consistency``
    is set, z3 checks the premises alone. Raises :class:`FOLSyntaxError` on a formula that does not
    parse, naming the premise.
    """
    keys = [_labelled_key(f"premise {i}", p) for i, p in enumerate(premises)]
    goal = _labelled_key("conclusion", conclusion)
    out: list[Finding] = []
    first: dict[tuple[Any, ...], int] = {}
    for i, key in enumerate(keys):
        if key == goal:
            out.append(Finding(reason="conclusion_in_premises", premise=i,
                               detail=f"premise {i + 1} is the conclusion (up to bound-variable names): {premises[i]}"))
        if key in first:
            out.append(Finding(reason="repeated_premise", premise=i,
                               detail=f"premise {i + 1} repeats premise {first[key] + 1}: {premises[i]}"))
        first.setdefault(key, i)
    if premises_consistent is None and prove_consistency and premises:
        premises_consistent = premises_satisfiable(premises, timeout_s)
    if premises_consistent is False:
        out.append(Finding(reason="inconsistent_premises",
                           detail="the premises alone are unsatisfiable, so they entail every conclusion"))
    return out


def _labelled_key(label: str, text: str) -> tuple[Any, ...]:
    try:
        return alpha_key(text)
    except FOLSyntaxError as exc:
        raise FOLSyntaxError(f"{label}: {exc.problem}", position=exc.position, token=exc.token,
                             formula=exc.formula, hint=exc.hint) from None


class DegenerateProgramVerifier(VerifierBase):
    """Hard verifier: ``ok=False`` for a degenerate program, label = its first reason.

    The candidate is anything ``agentkit.verifiers.fol.FOLVerifier`` accepts (an object or mapping
    with ``premises_fol``/``conclusion_fol``, or a ``(premises, conclusion)`` tuple).
    ``context["premises_consistent"]`` reuses a prover's finding; ``allow_inconsistent`` keeps
    inconsistent premises acceptable (the LINC paper's behaviour). A syntax error is ``ok=False``
    with label "Error".
    """

    def __init__(self, name: str = "fol_degenerate", *, allow_inconsistent: bool = False,
                 timeout_s: float = 10.0) -> None:
        super().__init__(name, hard=True)
        self.allow_inconsistent = allow_inconsistent
        self.timeout_s = timeout_s

    def check(self, candidate: Any, context: Mapping[str, Any]) -> Verdict:
        premises, conclusion = _unpack(candidate)
        try:
            found = findings(list(premises), conclusion, premises_consistent=context.get("premises_consistent"),
                             prove_consistency=not self.allow_inconsistent, timeout_s=self.timeout_s)
        except FOLSyntaxError as exc:
            return Verdict(ok=False, label="Error", reason=str(exc))
        if self.allow_inconsistent:
            found = [f for f in found if f.reason != "inconsistent_premises"]
        if not found:
            return Verdict(ok=True, label="pass", reason="no copied conclusion, repeated premise or contradiction")
        return Verdict(ok=False, label=found[0].reason, reason="; ".join(f.detail for f in found))
