"""The degenerate-program checks (verifiers/fol_checks.py) on hand-made programs, starting with the one
issue 17 quotes from SmolLM2 on ProntoQA_1: predicates from no word of the input, the conclusion copied
into the premises from the third line on, and that line repeated."""

from __future__ import annotations

import pytest

from agentkit.verifiers.fol import FOLSyntaxError, check
from agentkit.verifiers.fol_checks import (
    DegenerateProgramVerifier,
    alpha_equivalent,
    alpha_key,
    findings,
    premises_satisfiable,
)

COPIED = "∃x (Yum(x) → Yumy(x))"
#: The issue's sample, shortened: two drifted premises, then the conclusion over and over.
ISSUE_PROGRAM = (["∀x (Jumbouses(x) → Yellus(x))", "∀x (Jumbouses(x) → Yumpus(x))", COPIED, COPIED, COPIED], COPIED)


def _reasons(premises, conclusion, **kw) -> list[tuple[str, int | None]]:
    return [(f.reason, f.premise) for f in findings(premises, conclusion, **kw)]


def test_the_issues_program_is_caught_for_both_reasons_and_the_prover_alone_would_say_true() -> None:
    premises, conclusion = ISSUE_PROGRAM
    assert check(premises, conclusion).label == "True"  # what the prover makes of it: a "proof"
    assert _reasons(premises, conclusion) == [
        ("conclusion_in_premises", 2), ("conclusion_in_premises", 3), ("repeated_premise", 3),
        ("conclusion_in_premises", 4), ("repeated_premise", 4)]


@pytest.mark.parametrize(("a", "b", "same"), [
    ("∃x (Yum(x) → Yumy(x))", "∃y (Yum(y) → Yumy(y))", True),                  # renamed bound variable
    ("∀x ∃y (R(x, y))", "∀u ∃v (R(u, v))", True),
    ("∀x ∃y (R(x, y))", "∀x ∃y (R(y, x))", False),                             # arguments swapped
    ("∀x (P(x) → Q(x))", "∀x (Q(x) → P(x))", False),
    ("P(a)", "P(b)", False),                                                     # constants are not renamed
    ("∀x (P(x) ∧ Q(x))", "∀x (Q(x) ∧ P(x))", False),                           # strict: order counts
    ("∀x ∀x (P(x))", "∀y ∀x (P(x))", True),                                      # the innermost binder wins
    ("∀x (P(x)) ∧ Q(x)", "∀y (P(y)) ∧ Q(x)", True),                              # the free x is a constant
])
def test_alpha_equivalence_renames_bound_variables_only(a: str, b: str, same: bool) -> None:
    assert alpha_equivalent(a, b) is same
    assert (alpha_key(a) == alpha_key(b)) is same


def test_a_clean_program_has_no_findings() -> None:
    premises = ["∀x (Hawk(x) → ¬Lands(x))", "∃x (Bird(x) ∧ Hawk(x))"]
    assert findings(premises, "∀x (Bird(x) → Lands(x))") == []


def test_a_renamed_copy_of_the_conclusion_is_still_a_copy() -> None:
    assert _reasons(["P(a)", "∀y (Q(y) → R(y))"], "∀x (Q(x) → R(x))") == [("conclusion_in_premises", 1)]


def test_a_repeated_premise_points_at_the_repeat_and_names_the_first() -> None:
    (found,) = findings(["P(a)", "∀x (Q(x))", "∀z (Q(z))"], "R(a)")
    assert (found.reason, found.premise) == ("repeated_premise", 2)
    assert "premise 3 repeats premise 2" in found.detail


def test_inconsistent_premises_are_found_by_z3_or_taken_from_the_prover() -> None:
    premises = ["∀x (P(x) → Q(x))", "P(a)", "¬Q(a)"]
    assert premises_satisfiable(premises) is False and premises_satisfiable(premises[:2]) is True
    assert _reasons(premises, "R(b)") == [("inconsistent_premises", None)]
    assert _reasons(premises, "R(b)", prove_consistency=False) == []  # nothing established, nothing claimed
    assert _reasons(["P(a)"], "R(b)", premises_consistent=False) == [("inconsistent_premises", None)]
    assert check(premises, "R(b)").premises_consistent is False  # what LINC passes on


def test_a_syntax_error_names_the_formula() -> None:
    with pytest.raises(FOLSyntaxError, match="premise 1"):
        findings(["P(a)", "P(a) ∧"], "P(a)")


def test_the_verifier_gates_with_the_first_reason_and_lists_all() -> None:
    verifier = DegenerateProgramVerifier()
    premises, conclusion = ISSUE_PROGRAM
    verdict = verifier.verify({"premises_fol": premises, "conclusion_fol": conclusion})
    assert verdict.ok is False and verdict.label == "conclusion_in_premises"
    assert "repeats premise 3" in verdict.reason
    assert verifier.verify((["P(a)"], "Q(a)")).ok is True
    inconsistent = (["P(a)", "¬P(a)"], "Q(a)")
    assert verifier.verify(inconsistent).label == "inconsistent_premises"
    assert DegenerateProgramVerifier(allow_inconsistent=True).verify(inconsistent).ok is True
    assert verifier.verify((["P(a) ∧"], "Q(a)")).label == "Error"


def test_the_verifier_reuses_a_prover_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    import agentkit.verifiers.fol_checks as checks

    monkeypatch.setattr(checks, "premises_satisfiable", lambda *a, **k: pytest.fail("z3 should not run"))
    verdict = DegenerateProgramVerifier().verify((["P(a)"], "Q(a)"), {"premises_consistent": True})
    assert verdict.ok is True
