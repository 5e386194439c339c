"""Fake OpenAI servers (tests/unit/fake_openai_server.FakeOpenAI) that answer any JSON schema they are sent.

Each completion is the smallest JSON value the request's ``response_format`` schema accepts, with
every string "4": enough for a whole pattern (DaSLaM's decomposition, its sub-answers) to run over
real HTTP, so tests can count which server each call of a run reached. ``python -m
tests.unit._eval_pool_fakes COUNT DELAY_S`` serves COUNT of them from a child process (printing
their URLs on one line) until its stdin closes, so a test can SIGKILL a server mid-eval.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

from tests.unit.fake_openai_server import FakeOpenAI, Reply


def fill(schema: dict[str, Any], defs: dict[str, Any] | None = None) -> Any:
    """A small value valid under ``schema`` (the subset pydantic emits: objects, arrays, strings, numbers)."""
    defs = defs if defs is not None else schema.get("$defs", {})
    if "$ref" in schema:
        return fill(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return fill(options[0], defs)
    kind = schema.get("type", "object")
    if kind == "object":
        return {name: fill(sub, defs) for name, sub in schema.get("properties", {}).items()}
    if kind == "array":
        return [fill(schema.get("items", {"type": "string"}), defs) for _ in range(max(1, schema.get("minItems", 1)))]
    if kind in ("integer", "number"):
        return max(4, schema.get("minimum", 4))
    if kind == "boolean":
        return True
    return "4" * max(1, schema.get("minLength", 1))


@dataclass
class SchemaFake(FakeOpenAI):
    """Answers each request with ``n`` copies of the smallest value its JSON schema accepts."""

    def completion(self, request: dict[str, Any], reply: Reply) -> dict[str, Any]:
        schema = ((request.get("response_format") or {}).get("json_schema") or {}).get("schema")
        if schema is not None and reply.texts is None:
            text = json.dumps(fill(schema), separators=(",", ":"))
            reply = Reply(status=reply.status, delay_s=reply.delay_s, texts=[text] * int(request.get("n", 1)))
        return super().completion(request, reply)


def _serve(count: int, delay_s: float) -> None:
    fakes = [SchemaFake(default=Reply(delay_s=delay_s)).__enter__() for _ in range(count)]
    print(" ".join(f.url for f in fakes), flush=True)
    sys.stdin.read()  # until the test closes our stdin (or kills us)


if __name__ == "__main__":
    _serve(int(sys.argv[1]), float(sys.argv[2]))
