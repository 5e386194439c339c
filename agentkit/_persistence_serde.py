"""How agentkit's checkpointers write state: pydantic values as plain data, everything else as LangGraph does.

LangGraph's default serializer stores a pydantic value as (module, class, fields) and on load imports
that class and, if the fields no longer validate, silently builds it *without* validation. A state
model that changed since the checkpoint was written would then reach a node half-broken, and a class
made at build time (``create_model``: cascade's state, DaSLaM's bounded decomposition) cannot be
imported at all. Storing plain data and validating it against the *current* state model on resume
(``_persistence_run.check_values``) turns both into one clear error naming the field. Loading also
imports no class named by the database's contents.
"""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from pydantic import BaseModel


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):  # named tuples keep their type
        return tuple(_plain(v) for v in value)
    return value


class PlainStateSerializer(JsonPlusSerializer):
    """JsonPlus with pydantic models (at any depth of dicts/lists/tuples) stored as their JSON data."""

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        return super().dumps_typed(_plain(obj))
