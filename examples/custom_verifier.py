"""Attach your own verifier: a function returning a bool (hard gate) or a score (soft)."""

from agentkit.verifiers import AnswerMatchVerifier, ArithmeticVerifier, verifier
from agentkit.verifiers.answer import extract_gsm8k_answer


@verifier(name="states_final_answer")  # hard: gates candidates
def states_final_answer(candidate: str) -> bool:
    return "####" in candidate


@verifier(name="mentions_units", hard=False)  # soft: scores candidates
def mentions_units(candidate: str, context) -> float:
    units = context.get("units", [])
    return sum(unit in candidate for unit in units) / max(len(units), 1)


if __name__ == "__main__":
    question = {"units": ["eggs", "$"], "label": "18"}
    gold = AnswerMatchVerifier("label", "number", extract=extract_gsm8k_answer)
    for text in [
        "She sells 16 - 3 - 4 = <<16-3-4=9>>9 eggs for 9 * 2 = $<<9*2=18>>18.\n#### 18",
        "She sells 16 - 3 = <<16-3=13>>13 eggs for 13 * 2 = $<<13*2=24>>24.\n#### 24",
    ]:
        print(text.splitlines()[-1])
        for check in [states_final_answer, ArithmeticVerifier(), gold, mentions_units]:
            v = check.verify(text, question)
            print(f"  {check.name:20} ok={v.ok!s:5} score={v.score} {v.label}: {v.reason}")
