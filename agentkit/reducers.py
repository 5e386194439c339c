"""Named reducers for state keys that parallel branches write.

Declare one on a state field with ``Annotated``::

    class State(BaseModel):
        verdicts: Annotated[list[Verdict], Collect()] = []
        votes: Annotated[Tally, MajorityVote()] = Tally()

LangGraph calls ``reducer(current, update)`` once per write; the graph builder refuses to compile a
graph whose parallel branches write a key that has no reducer.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, Field


class Reducer:
    """Base class: a binary merge ``(current, update) -> merged`` that must not mutate its inputs."""

    def __call__(self, current: Any, update: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Collect(Reducer):
    """Concatenate: each branch contributes one item or a list of items, in arrival order."""

    def __call__(self, current: list[Any] | None, update: Any) -> list[Any]:
        items = list(update) if isinstance(update, (list, tuple)) else [update]
        return [*(current or []), *items]


class Tally(BaseModel):
    """Vote counts in first-seen order, so ties go to the earliest answer deterministically."""

    counts: dict[str, int] = Field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def winner(self) -> str | None:
        best: str | None = None
        for answer, count in self.counts.items():
            if best is None or count > self.counts[best]:
                best = answer
        return best

    @property
    def agreement(self) -> float:
        return self.counts[self.winner] / self.total if self.total else 0.0

    def add(self, votes: Iterable[str]) -> Tally:
        counts = dict(self.counts)
        for vote in votes:
            counts[vote] = counts.get(vote, 0) + 1
        return Tally(counts=counts)


class MajorityVote(Reducer):
    """Accumulate votes into a ``Tally``; an update is one vote, a list of votes, or a Tally."""

    def __call__(self, current: Tally | None, update: Any) -> Tally:
        base = current if isinstance(current, Tally) else Tally()
        if isinstance(update, Tally):
            votes: list[str] = [a for a, c in update.counts.items() for _ in range(c)]
        elif isinstance(update, str):
            votes = [update]
        else:
            votes = [str(v) for v in update]
        return base.add(votes)


class Scored(BaseModel):
    """A value with a score, as written into a ``MaxScore`` key."""

    score: float
    value: Any = None


class MaxScore(Reducer):
    """Keep the highest-scoring value; on equal scores the one that arrived first stays."""

    def __call__(self, current: Scored | None, update: Scored | list[Scored]) -> Scored | None:
        best = current if isinstance(current, Scored) else None
        for item in update if isinstance(update, list) else [update]:
            if best is None or item.score > best.score:
                best = item
        return best
