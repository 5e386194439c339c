"""MAJ on GSM8K: a board of three small-model judges decides whether a candidate solution is correct.

Judge profiles are data: add, drop or rewrite them, and give any judge its own backend.

    python examples/maj.py
"""

from agentkit.backends.llamacpp import LlamaCppBackend
from agentkit.eval import load_dataset
from agentkit.graphs import maj

if __name__ == "__main__":
    case = load_dataset("gsm8k-judge", limit=4)[3]  # a model-written solution to Janet's ducks (label: correct)
    judges = [
        *maj.DEFAULT_JUDGES,  # the paper's Deductive, Logical and Robust Reasoners
        # maj.JudgeProfile(name="units_checker", instructions="Check every unit and conversion.", backend=other),
    ]
    graph = maj.build(LlamaCppBackend(), judges=judges, max_rounds=2).compile()
    out = graph.invoke(maj.input_from(case))

    print(f"Question: {case.fields['question']}\nCandidate:\n{case.fields['candidate']}\n")
    for turn in out.transcript:
        said = f"{turn.verdict} ({turn.confidence:.2f}) {turn.rationale}" if turn.verdict else "no valid verdict"
        print(f"round {turn.round} {turn.judge:20} {said}")
    print(f"\nBoard verdict: {out.answer} (agreement {out.agreement:.2f}, deliberation rounds {out.rounds_used}); "
          f"gold: {case.label}")
