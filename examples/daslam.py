"""DaSLaM on a GSM8K problem: a decomposer model writes sub-questions, a solver model answers them.

The paper's point is that the two roles can be different models (a small decomposer steering a
larger solver). Here both default to the embedded SmolLM2; pass any other backend as the solver,
e.g. an OpenAI-compatible endpoint, and keep the small model as the decomposer.

    python examples/daslam.py
"""

from agentkit.backends.llamacpp import LlamaCppBackend
from agentkit.eval import load_dataset
from agentkit.graphs import daslam
from agentkit.verifiers.answer import answers_match

if __name__ == "__main__":
    problem = load_dataset("gsm8k", limit=1)[0]  # Janet's ducks: 16 eggs a day, ... (gold: 18)
    decomposer = LlamaCppBackend()
    solver = decomposer  # swap in a larger model here
    graph = daslam.build(solver, decomposer, max_subquestions=3, answer_kind="number").compile()
    out = graph.invoke(daslam.input_from(problem))

    print(f"Problem: {problem.fields['question']}\n")
    print(f"Initial attempt: {out.initial.rationale}  -> {out.initial_answer}")
    for i, step in enumerate(out.steps, 1):
        print(f"  {i}. {step.subquestion}\n     {step.rationale} -> {step.answer}")
    print(f"Final answer: {out.final.rationale}  -> {out.answer}")
    verdict = {True: "right", False: "wrong"}
    print(f"Gold {problem.label}: initial {verdict[answers_match(out.initial_answer, problem.label, 'number')]}, "
          f"final {verdict[answers_match(out.answer, problem.label, 'number')]}, "
          f"decomposition {'changed' if out.changed else 'kept'} the answer")
