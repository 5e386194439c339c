"""LINC's input and parse types, shared by the paper-mode parser and the per-sentence variant
(``agentkit.graphs.linc`` re-exports them; import them from there)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field, field_validator


class LogicProblem(BaseModel):
    """Natural-language premises and a conclusion; each is one line (whitespace runs become a space)."""

    premises: list[str] = Field(min_length=1, max_length=64)
    conclusion: str

    @field_validator("premises", mode="after")
    @classmethod
    def _one_line_each(cls, premises: list[str]) -> list[str]:
        return [_one_line(p, f"premises[{i}]") for i, p in enumerate(premises)]

    @field_validator("conclusion", mode="after")
    @classmethod
    def _one_line_conclusion(cls, conclusion: str) -> str:
        return _one_line(conclusion, "conclusion")

    @property
    def sentences(self) -> list[str]:
        """The premises, then the conclusion: the order every formula list follows."""
        return [*self.premises, self.conclusion]


class FOLProgram(BaseModel):
    """One semantic parse: a formula per premise, in order, and one for the conclusion."""

    premises_fol: list[str]
    conclusion_fol: str


def _one_line(text: str, field: str) -> str:
    if re.search(r"[\x00-\x08\x0e-\x1f\x7f]", text):
        raise ValueError(f"{field} contains control characters; pass plain sentences")
    line = " ".join(text.split())
    if not line:
        raise ValueError(f"{field} is empty; every premise and the conclusion need a sentence")
    return line


class SampleVerdict(BaseModel):
    """One sample's FOL (None when the sample failed validation) and what the prover made of it.

    ``findings`` are the degenerate traits the checks found (``agentkit.verifiers.fol_checks``
    reasons); ``refused`` the ones that made the sample an Error (the checks knobs decide which),
    in which case ``label`` is "Error" although the prover decided it."""

    premises_fol: list[str] | None = None
    conclusion_fol: str | None = None
    label: Literal["True", "False", "Uncertain", "Error"]
    reason: str
    premises_consistent: bool | None = None  # False: the premises entail everything (label "True")
    findings: list[str] = Field(default_factory=list)
    refused: list[str] = Field(default_factory=list)

    @property
    def decided(self) -> bool:
        """The prover gave a label (a refused sample was decided, then refused)."""
        return self.label != "Error" or bool(self.refused)
