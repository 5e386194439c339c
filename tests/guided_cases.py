"""Output types and prompts for the guided-decoding tests, shared by the SmolLM2 (llama.cpp) and the
real-vLLM tests so both engines face the same schemas; the in-process engine script runs in the vLLM
venv, so this module imports nothing but pydantic."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Literal

from pydantic import BaseModel, Field


class Sentiment(str, Enum):
    positive = "positive"
    negative = "negative"
    mixed = "mixed"


class Aspect(BaseModel):
    name: str = Field(max_length=30)
    positive: bool


class Review(BaseModel):
    sentiment: Sentiment
    stars: int = Field(ge=1, le=5)
    aspects: list[Aspect] = Field(min_length=1, max_length=3)


class Step(BaseModel):
    expression: str = Field(max_length=40)
    value: int


class Arithmetic(BaseModel):
    steps: list[Step] = Field(min_length=1, max_length=3)
    final: int


class Contact(BaseModel):
    name: str = Field(max_length=40)
    role: Literal["customer", "supplier", "employee"]
    age: int | None = Field(default=None, ge=0, le=120)
    # each tag bounded too: an unbounded sampled string can run on to max_tokens (seen once on vLLM CPU)
    tags: list[Annotated[str, Field(max_length=20)]] = Field(default_factory=list, max_length=3)


CASES: list[tuple[type[BaseModel], str, list[str]]] = [
    (Review, "Read the review and extract its sentiment, star rating and aspects.",
     ["The pasta was great but the service was slow.", "Terrible battery, lovely screen, fair price.",
      "Best hotel stay ever: clean rooms, friendly staff.", "The movie was boring and too long."]),
    (Arithmetic, "Solve the arithmetic problem in small steps.",
     ["What is 12 + 30?", "Compute 7 * 8 - 6.", "What is (15 - 5) * 3?", "Add 19 and 23, then double it."]),
    (Contact, "Extract the contact described in the text.",
     ["Maria Lopez, 34, is our supplier of flour.", "Tom works here as an engineer; he is 51.",
      "A customer named Li Wei wrote to complain.", "Ada, employee, team lead, 29 years old."]),
]  # fmt: skip


class Text(BaseModel):
    text: str
