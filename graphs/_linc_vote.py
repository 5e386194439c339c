"""LINC's ``vote="sentence"``: self-consistency per sentence before the prover, our variant.

In words mode every sample of a sentence is written over the same names, so the K formulas of one
sentence compare as strings (each is printed canonically). A ProntoQA proof needs a chain of five or
more premises: one wrong link makes a sample "Uncertain", and the K samples break at different
links, so the paper's vote over whole programs is often "Uncertain" even where most samples got
every single link right somewhere. Voting each sentence first keeps the formula most samples wrote
for it, and the prover then decides the one program those formulas make.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from agentkit.graphs._linc_types import FOLProgram


def vote_sentences(programs: Sequence[FOLProgram]) -> tuple[FOLProgram, float]:
    """The program of each sentence's most frequent formula (a tie goes to the earliest sample's, as
    the program vote breaks ties), and the mean share of the samples that wrote the chosen formulas."""
    if not programs:
        raise ValueError("vote_sentences needs at least one program")
    columns = list(zip(*([*p.premises_fol, p.conclusion_fol] for p in programs), strict=True))
    chosen = [Counter(column).most_common(1)[0] for column in columns]
    formulas = [formula for formula, _ in chosen]
    agreement = sum(n for _, n in chosen) / (len(chosen) * len(programs))
    return FOLProgram(premises_fol=formulas[:-1], conclusion_fol=formulas[-1]), agreement
