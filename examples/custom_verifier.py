"""Attach your own verifier: a function returning a bool gates a graph route (a float would score)."""
from pydantic import BaseModel, Field

from agentkit import END, START, Agent, Graph, Sampling
from agentkit.backends.llamacpp import LlamaCppBackend
from agentkit.verifiers import ArithmeticVerifier, Verdict, verifier


class Solution(BaseModel):
    work: str = Field(max_length=80, description="the calculation, e.g. 2 * 5 = 10")
    answer: str = Field(max_length=12, description="the final number")


@verifier(name="shows_its_work")  # hard: its verdict decides where the graph goes next
def shows_its_work(candidate: Solution) -> bool:
    return "=" in candidate.work and candidate.answer in candidate.work


class State(BaseModel):
    question: str
    solution: Solution | None = None
    shown: Verdict | None = None
    arithmetic: Verdict | None = None


if __name__ == "__main__":
    shot = (State(question="2 boxes hold 5 toys each. How many toys?"), Solution(work="2 * 5 = 10", answer="10"))
    solver = Agent("solve", instructions="Write the calculation, then the answer.", output_type=Solution,
                   examples=[shot], prompt=lambda s: f"Question: {s.question}", sampling=Sampling(max_tokens=80))
    g = Graph("checked", State).add_agent("solve", solver, inputs=["question"], output="solution")
    g.add_verifier("shows_work", shows_its_work, candidate="solution", output="shown")
    g.add_verifier("arithmetic", ArithmeticVerifier(field="work"), candidate="solution", output="arithmetic")
    g.add_edge(START, "solve").add_edge("solve", "shows_work").add_edge("arithmetic", END)
    g.add_route("shows_work", lambda s: "arithmetic" if s.shown.ok else END, {"arithmetic": "arithmetic", END: END})
    out = g.compile(backend=LlamaCppBackend()).invoke({"question": "3 pens hold 4 sheep each. How many sheep?"})
    print(f"SmolLM2 -> {out.solution}\n  {shows_its_work.name}: {out.shown}\n  arithmetic: {out.arithmetic}")
    wrong = Solution(work="13*2 = 24", answer="24")  # the same checks on a hand-written wrong solution
    print(f"hand-written -> {wrong}\n  arithmetic: {ArithmeticVerifier(field='work').verify(wrong)}")
