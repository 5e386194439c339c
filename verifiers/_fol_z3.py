"""Translate parsed FOLIO formulas to z3 and decide entailment.

Each call builds its own ``z3.Context`` so concurrent provers (the runtime runs verifiers in
worker threads) share no solver state. The encoding is plain single-sorted FOL: one
uninterpreted sort, predicates as functions to Bool keyed by (name, arity), constants as
uninterpreted constants with no unique-names assumption (FOLIO's gold labels assume none,
and Prover9, the prover FOLIO and LINC use, makes none either).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import z3

from agentkit.verifiers._fol_parse import (
    And,
    Atom,
    Const,
    Exists,
    ForAll,
    Formula,
    Iff,
    Implies,
    Not,
    Or,
    Var,
    Xor,
)

Label = Literal["True", "False", "Uncertain"]


@dataclass(frozen=True, slots=True)
class _Outcome:
    label: Label
    reason: str
    timed_out: bool
    premises_consistent: bool | None
    conclusive: bool = True


class _Translator:
    def __init__(self, ctx: z3.Context) -> None:
        self.ctx = ctx
        self.sort = z3.DeclareSort("U", ctx)
        self._preds: dict[tuple[str, int], z3.FuncDeclRef] = {}
        self._consts: dict[str, z3.ExprRef] = {}
        self._names_by_pred: dict[str, int] = {}

    def formula(self, f: Formula, env: dict[str, z3.ExprRef]) -> z3.BoolRef:
        if isinstance(f, Atom):
            return self._pred(f.pred, len(f.args))(*[self._term(a, env) for a in f.args])
        if isinstance(f, Not):
            return z3.Not(self.formula(f.arg, env), self.ctx)
        if isinstance(f, And):
            return z3.And([self.formula(a, env) for a in f.args])
        if isinstance(f, Or):
            return z3.Or([self.formula(a, env) for a in f.args])
        if isinstance(f, Xor):
            return z3.Xor(self.formula(f.left, env), self.formula(f.right, env), self.ctx)
        if isinstance(f, Implies):
            return z3.Implies(self.formula(f.left, env), self.formula(f.right, env), self.ctx)
        if isinstance(f, Iff):
            return self.formula(f.left, env) == self.formula(f.right, env)
        if isinstance(f, (ForAll, Exists)):
            # a fresh z3 constant per binder: shadowing (∀x ... ∃x ...) and constants that happen
            # to share a variable's name can never be captured
            v = z3.FreshConst(self.sort, prefix=f.var)
            body = self.formula(f.body, {**env, f.var: v})
            return z3.ForAll([v], body) if isinstance(f, ForAll) else z3.Exists([v], body)
        raise TypeError(f"not a formula: {type(f).__name__}")

    def _term(self, t: Var | Const, env: dict[str, z3.ExprRef]) -> z3.ExprRef:
        if isinstance(t, Var):
            if t.name not in env:
                raise ValueError(f"variable {t.name!r} is not bound by any quantifier")
            return env[t.name]
        c = self._consts.get(t.name)
        if c is None:
            c = self._consts[t.name] = z3.Const(t.name, self.sort)
        return c

    def _pred(self, name: str, arity: int) -> z3.FuncDeclRef:
        key = (name, arity)
        p = self._preds.get(key)
        if p is None:
            # z3 tells overloads apart by signature, but distinct symbols keep models readable
            symbol = name if name not in self._names_by_pred else f"{name}/{arity}"
            self._names_by_pred.setdefault(name, arity)
            p = self._preds[key] = z3.Function(symbol, *([self.sort] * arity), z3.BoolSort(self.ctx))
        return p


#: how long past its own timeout z3 may run before the context is interrupted
_BACKSTOP_S = 0.5


def decide(premises: Sequence[Formula], conclusion: Formula, timeout_s: float) -> _Outcome:
    """Run the two checks the three-way FOLIO label needs.

    Both checks always run (each with its own ``timeout_s``, so the call takes at most about
    2 × timeout_s): the second one is what tells "entailed" apart from "entailed because the
    premises are inconsistent", which a verifier must not report as a genuine proof.
    """
    ctx = z3.Context()
    tr = _Translator(ctx)
    prem = [tr.formula(p, {}) for p in premises]
    concl = tr.formula(conclusion, {})
    solver = z3.Solver(ctx=ctx)
    solver.set("timeout", max(1, int(round(timeout_s * 1000))))
    solver.add(*prem)

    def run(goal: z3.BoolRef) -> tuple[z3.CheckSatResult, str, float]:
        solver.push()
        solver.add(goal)
        start = time.monotonic()
        # z3 checks its own timeout only at some points of its search; on a loaded machine it was
        # seen to run 350 s past a 1 ms limit. Interrupting the context from a timer is the backstop.
        backstop = threading.Timer(timeout_s + _BACKSTOP_S, ctx.interrupt)
        backstop.daemon = True
        backstop.start()
        try:
            result = solver.check()
        finally:
            backstop.cancel()
        elapsed = time.monotonic() - start
        why = solver.reason_unknown() if result == z3.unknown else ""
        solver.pop()
        return result, why, elapsed

    neg_res, neg_why, neg_t = run(z3.Not(concl, ctx))  # unsat ⇒ premises ⊨ conclusion
    pos_res, pos_why, pos_t = run(concl)  # unsat ⇒ premises ⊨ ¬conclusion

    def unknown_text(goal: str, why: str, elapsed: float) -> tuple[str, bool]:
        timed_out = "timeout" in why or "canceled" in why or elapsed >= timeout_s
        if timed_out:
            return f"timeout after {timeout_s:g}s on premises ⊨ {goal}", True
        return f"z3 gave up ({why or 'unknown'}) on premises ⊨ {goal}", False

    if neg_res == z3.unsat and pos_res == z3.unsat:
        return _Outcome(
            "True",
            "premises are inconsistent (unsatisfiable), so they entail every formula: "
            "the conclusion and its negation alike",
            False,
            False,
        )
    if neg_res == z3.unsat:
        reason = "premises ⊨ conclusion (premises ∧ ¬conclusion is unsatisfiable)"
        consistent: bool | None = True
        if pos_res == z3.unknown:
            text, _ = unknown_text("¬conclusion", pos_why, pos_t)
            reason += f"; consistency of premises ∧ conclusion not established ({text})"
            consistent = None
        return _Outcome("True", reason, False, consistent)
    if pos_res == z3.unsat:
        reason = "premises ⊨ ¬conclusion (premises ∧ conclusion is unsatisfiable)"
        consistent = True
        if neg_res == z3.unknown:
            text, _ = unknown_text("conclusion", neg_why, neg_t)
            reason += f"; consistency of premises ∧ ¬conclusion not established ({text})"
            consistent = None
        return _Outcome("False", reason, False, consistent)
    if neg_res == z3.sat and pos_res == z3.sat:
        return _Outcome(
            "Uncertain",
            "neither follows: z3 found a model of premises ∧ ¬conclusion and one of premises ∧ conclusion",
            False,
            True,
        )
    parts: list[str] = []
    timed_out = False
    for res, goal, why, elapsed in (
        (neg_res, "conclusion", neg_why, neg_t),
        (pos_res, "¬conclusion", pos_why, pos_t),
    ):
        if res == z3.unknown:
            text, t = unknown_text(goal, why, elapsed)
            parts.append(text)
            timed_out = timed_out or t
    consistent = True if z3.sat in (neg_res, pos_res) else None
    return _Outcome("Uncertain", "; ".join(parts), timed_out, consistent, conclusive=False)
