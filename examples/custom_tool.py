"""Attach your own tool: a typed function becomes a graph node and a tool a ToolAgent can call."""
from pydantic import BaseModel, Field

from agentkit import END, START, Graph
from agentkit.backends.llamacpp import LlamaCppBackend
from agentkit.tool_use import ToolAgent, ToolExample
from agentkit.tools import tool


@tool
def unit_price(total: float, quantity: int) -> float:
    """Price of one item when `quantity` items cost `total` dollars together."""
    return total / quantity


class Order(BaseModel):
    total: float
    quantity: int
    price: float | None = None


class Question(BaseModel):
    question: str


class Answer(BaseModel):
    answer: str = Field(max_length=20)


if __name__ == "__main__":
    graph = Graph("order", Order).add_tool("unit_price", unit_price, args={"total": "total", "quantity": "quantity"},
                                          output="price").add_edge(START, "unit_price").add_edge("unit_price", END)
    print("graph node -> price", graph.compile().invoke({"total": 18, "quantity": 4}).price)
    shot = ToolExample(input=Question(question="3 pens cost 6 dollars. What does one pen cost?"),
                       calls=[("unit_price", {"total": 6, "quantity": 3})], output=Answer(answer="2"))
    agent = ToolAgent("shopper", instructions="Answer the question using the unit_price tool.", tools=[unit_price],
                      input_type=Question, output_type=Answer, examples=[shot], tool_choice="required")
    out = agent.run({"question": "4 notebooks cost 18 dollars. What does 1 notebook cost?"}, backend=LlamaCppBackend())
    print("SmolLM2 steps ->", *(f"{s.reply} {s.observation or ''}" for s in out.steps), sep="\n  ")
    print("answer ->", out.output.answer)
