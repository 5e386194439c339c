"""Decoding contract: closed schemas, compact whitespace, typed violations, grammar cache."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, Field

from agentkit.backends.base import Choice, GenerationRequest, Message, OutputConstraint
from agentkit.decoding import GrammarCache, constraint_for, json_schema_for, parse_choice, parse_choices
from agentkit.errors import SchemaViolation, TruncatedOutput


class Inner(BaseModel):
    name: str
    weight: int = Field(ge=0)


class Outer(BaseModel):
    kind: Literal["a", "b"]
    items: list[Inner] = Field(max_length=3)


def test_every_object_in_the_schema_is_closed() -> None:
    schema = json_schema_for(Outer)
    assert schema["additionalProperties"] is False
    assert schema["$defs"]["Inner"]["additionalProperties"] is False


def test_constraint_is_compact_json_schema() -> None:
    c = constraint_for(Outer)
    assert c.kind == "json_schema" and c.whitespace == "compact"
    assert c.value["properties"]["kind"]["enum"] == ["a", "b"]


def test_valid_choice_parses() -> None:
    out = parse_choice(Outer, Choice(text='{"kind":"a","items":[{"name":"x","weight":2}]}'))
    assert out.items[0].weight == 2


def test_violation_names_type_and_field() -> None:
    with pytest.raises(SchemaViolation, match=r"Outer\.items\.0\.weight: Input should be greater than or equal to 0") as info:
        parse_choice(Outer, Choice(text='{"kind":"a","items":[{"name":"x","weight":-1}]}'))
    assert info.value.field == "items.0.weight"
    assert "weight" in (info.value.text or "")


def test_free_text_is_a_violation_not_a_value() -> None:
    with pytest.raises(SchemaViolation, match=r"Outer\.<root>: Invalid JSON"):
        parse_choice(Outer, Choice(text="The answer is a."))


def test_truncated_sample_is_its_own_error() -> None:
    with pytest.raises(TruncatedOutput, match="max_tokens"):
        parse_choice(Outer, Choice(text='{"kind":"a","items":[{"na', finish_reason="length"))


def test_parse_choices_keeps_order_and_splits() -> None:
    good = Choice(text='{"kind":"b","items":[]}')
    bad = Choice(text="{")
    ok, violations = parse_choices(Outer, [bad, good, good])
    assert [o.kind for o in ok] == ["b", "b"]
    assert len(violations) == 1


def test_grammar_cache_compiles_once_per_constraint_and_tokenizer() -> None:
    cache: GrammarCache[object] = GrammarCache()
    compiled: list[str] = []

    def compile_it(tag: str):
        return lambda: compiled.append(tag) or tag

    c1 = constraint_for(Outer)
    c2 = constraint_for(Inner)
    assert cache.get(c1, "tok", compile_it("1")) == "1"
    assert cache.get(c1, "tok", compile_it("again")) == "1"
    assert cache.get(c1, "other-tok", compile_it("2")) == "2"
    assert cache.get(c2, "tok", compile_it("3")) == "3"
    assert compiled == ["1", "2", "3"]
    assert len(cache) == 3


def test_request_key_depends_on_everything_that_changes_output() -> None:
    base = GenerationRequest(messages=(Message(role="user", content="hi"),), constraint=constraint_for(Outer))
    assert base.key() == GenerationRequest.model_validate(base.model_dump()).key()
    assert base.key() != base.model_copy(update={"n": 2}).key()
    assert base.key() != base.model_copy(update={"constraint": OutputConstraint(kind="regex", value="a+")}).key()
