"""Attach your own tool: a typed Python function becomes something an agent can call."""

from agentkit.tools import ToolRegistry, calculator

from agentkit.errors import ToolError

tools = ToolRegistry([calculator])  # one registry per agent/graph, no global state


@tools.tool
def unit_price(total: float, quantity: int) -> float:
    """Price of one item when `quantity` items cost `total` together.

    Args:
        total: what all the items cost, in dollars.
        quantity: how many items were bought.
    """
    return total / quantity


if __name__ == "__main__":
    print("offered to the agent:", tools.schemas()[-1])
    # Arguments arrive as the model wrote them: JSON, strings for numbers, ...
    print("unit_price ->", tools.call("unit_price", '{"total": 18, "quantity": "4"}'))
    print("calculator ->", tools.call("calculator", {"expression": "18 / 4 * 3"}))
    try:
        tools.call("unit_price", {"total": 18, "qty": 4})
    except ToolError as exc:  # a message to hand back to the model so it can retry
        print("rejected:", exc)
