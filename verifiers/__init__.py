"""Verifiers: check what models say (``agentkit.verifiers``).

The protocol lives in :mod:`.base`; :mod:`.arithmetic` checks calculations exactly and
:mod:`.answer` normalises and matches final answers. The first-order-logic prover is imported
on its own as ``agentkit.verifiers.fol`` (it needs z3).
"""

from agentkit.verifiers.answer import (
    LOGIC_LABEL_SYNONYMS,
    AnswerKind,
    AnswerMatchVerifier,
    answers_match,
    extract_boxed,
    extract_gsm8k_answer,
    normalize_answer,
    normalize_label,
    normalize_latex,
    normalize_number,
    normalize_text,
)
from agentkit.verifiers.arithmetic import (
    ArithmeticDomainError,
    ArithmeticInputError,
    ArithmeticLimitError,
    ArithmeticSyntaxError,
    ArithmeticVerifier,
    ClaimCheck,
    check_claim,
    check_solution,
    evaluate,
    find_claims,
)
from agentkit.verifiers.base import (
    FunctionVerifier,
    Verdict,
    Verifier,
    VerifierBase,
    verifier,
)

__all__ = [
    "LOGIC_LABEL_SYNONYMS",
    "AnswerKind",
    "AnswerMatchVerifier",
    "ArithmeticDomainError",
    "ArithmeticInputError",
    "ArithmeticLimitError",
    "ArithmeticSyntaxError",
    "ArithmeticVerifier",
    "ClaimCheck",
    "FunctionVerifier",
    "Verdict",
    "Verifier",
    "VerifierBase",
    "answers_match",
    "check_claim",
    "check_solution",
    "evaluate",
    "extract_boxed",
    "extract_gsm8k_answer",
    "find_claims",
    "normalize_answer",
    "normalize_label",
    "normalize_latex",
    "normalize_number",
    "normalize_text",
    "verifier",
]
