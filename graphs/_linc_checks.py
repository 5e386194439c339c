"""LINC's symbolic inference with the degenerate-program checks applied to each sample.

The prover labels a program; ``agentkit.verifiers.fol_checks`` then looks for what makes that label
meaningless (a copied conclusion, a repeated premise, inconsistent premises). What is found is
always recorded on the sample and the trace; which findings *refuse* the sample (label "Error", so
it leaves the vote) is the pattern's policy:

* ``checks`` refuses copied conclusions and repeated premises;
* ``allow_inconsistent=False`` refuses inconsistent premises, whose "True" proves nothing. The
  paper counts them (its Prover9 run proves anything from a contradiction), so paper mode allows
  them by default and the per-sentence variant does not.

Consistency comes from the prover's own two checks (premises ∧ ¬conclusion and premises ∧ conclusion
both unsatisfiable exactly when the premises are), so the checks cost no third z3 call.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from opentelemetry import trace

from agentkit import tracing
from agentkit.graphs._linc_types import FOLProgram, SampleVerdict
from agentkit.verifiers.fol import FOLSyntaxError, check
from agentkit.verifiers.fol_checks import findings

#: trace names: ``agentkit.linc.invalid.<reason>`` (refused samples), ``agentkit.linc.found.<reason>``
INVALID = "agentkit.linc.invalid"
FOUND = "agentkit.linc.found"


def prove(program: FOLProgram, timeout_s: float) -> SampleVerdict:
    fol = {"premises_fol": program.premises_fol, "conclusion_fol": program.conclusion_fol}
    try:
        result = check(program.premises_fol, program.conclusion_fol, timeout_s=timeout_s)
    except FOLSyntaxError as exc:  # validation parsed these already; kept so a slip is an Error, not a crash
        return SampleVerdict(**fol, label="Error", reason=str(exc))
    if not result.conclusive:
        return SampleVerdict(**fol, label="Error", reason=f"the prover could not decide: {result.reason}",
                             premises_consistent=result.premises_consistent)
    return SampleVerdict(**fol, label=result.label, reason=result.reason,
                         premises_consistent=result.premises_consistent)


def judge(program: FOLProgram, timeout_s: float, *, checks: bool, allow_inconsistent: bool) -> SampleVerdict:
    """Prove the program, record its degenerate traits, and refuse it where the policy says so."""
    verdict = prove(program, timeout_s)
    try:
        found = findings(program.premises_fol, program.conclusion_fol,
                         premises_consistent=verdict.premises_consistent, prove_consistency=False)
    except FOLSyntaxError:
        return verdict  # already an Error with the parser's reason
    refused = [f for f in found if (not allow_inconsistent if f.reason == "inconsistent_premises" else checks)]
    update: dict[str, object] = {"findings": list(dict.fromkeys(f.reason for f in found))}
    if refused and verdict.label != "Error":
        update.update(label="Error", refused=list(dict.fromkeys(f.reason for f in refused)),
                      reason="degenerate program: " + "; ".join(f.detail for f in refused)
                             + f" (the prover said {verdict.label}: {verdict.reason})")
    return verdict.model_copy(update=update)


def annotate(samples: Sequence[SampleVerdict]) -> None:
    """Counts per reason on the current (symbolic_inference) span, and one event per refused sample."""
    if not tracing.enabled():
        return
    found = Counter(r for s in samples for r in s.findings)
    refused = Counter(r for s in samples for r in s.refused)
    tracing.annotate({**{f"{FOUND}.{r}": n for r, n in found.items()},
                      **{f"{INVALID}.{r}": n for r, n in refused.items()}})
    span = trace.get_current_span()
    if span.is_recording():
        for i, s in enumerate(samples):
            for r in s.refused:
                span.add_event(f"{INVALID}.{r}", {"agentkit.linc.sample": i, "agentkit.linc.reason": s.reason[:500]})
