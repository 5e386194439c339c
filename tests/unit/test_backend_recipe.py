"""Recipe: a new backend is one class implementing the Backend protocol plus one
``register_backend`` call; no agentkit file is touched.

The toy engine answers every JSON-schema request with canned field values, filled in from the
request's own schema, so the test also proves that what the agent asked for reached the backend.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentkit.backends import (
    Choice,
    Generation,
    GenerationRequest,
    Usage,
    backend_kinds,
    make_backend,
    register_backend,
)
from agentkit.errors import ConfigError, UnsupportedConstraint
from agentkit.graphs import mccot

CANNED = {"rationale": "Six times seven is 42.", "answer": "42"}


class ToyBackend:
    """Answers with CANNED values for the fields the request's JSON schema declares."""

    provider = "toy"

    def __init__(self, model: str = "toy-1", base_url: str | None = None) -> None:
        self.model = model
        self.base_url = base_url
        self.requests: list[GenerationRequest] = []

    async def generate(self, request: GenerationRequest) -> Generation:
        self.requests.append(request)
        constraint = request.constraint
        if constraint is None or constraint.kind != "json_schema":
            raise UnsupportedConstraint("the toy backend only answers JSON-schema requests")
        schema: dict[str, Any] = constraint.value
        missing = set(schema.get("required", ())) - set(CANNED)
        if missing:
            raise UnsupportedConstraint(f"the toy backend has no canned value for {sorted(missing)}")
        reply = {name: CANNED[name] for name in schema["properties"] if name in CANNED}
        text = json.dumps(reply, separators=(",", ":"))
        return Generation(
            choices=[Choice(text=text) for _ in range(request.n)],
            usage=Usage(input_tokens=11, output_tokens=7 * request.n),
            model=self.model,
        )


def toy_factory(*, model: str | None = None, base_url: str | None = None) -> ToyBackend:
    return ToyBackend(model or "toy-1", base_url)


@pytest.fixture(autouse=True)
def _own_kind_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test registers on a fresh table holding the built-in kinds only (as a new process
    has it), so no toy kind leaks into other tests, nor another test's kinds into these."""
    from agentkit.backends import _registry

    built_in = {kind: entry for kind, entry in _registry._KINDS.items() if kind in ("llamacpp", "vllm", "openai")}
    monkeypatch.setattr(_registry, "_KINDS", built_in)


def test_a_registered_toy_backend_runs_mccot_end_to_end() -> None:
    register_backend("toy", toy_factory, help="canned answers, for the recipe test")
    assert backend_kinds()["toy"] == "canned answers, for the recipe test"
    assert list(backend_kinds())[:3] == ["llamacpp", "vllm", "openai"]

    backend = make_backend("toy", model="toy-7", base_url="http://toy.invalid/v1")
    assert isinstance(backend, ToyBackend)
    assert (backend.model, backend.base_url) == ("toy-7", "http://toy.invalid/v1")

    result = mccot.build(backend, k=3).compile().invoke(mccot.Question(question="What is 6 x 7?"))

    assert result.answer == "42"
    assert result.rationale == CANNED["rationale"]
    assert (result.k, result.agreement) == (3, 1.0)
    assert [s.answer for s in result.samples] == ["42"] * 3
    # the k samples were asked for in ONE request, under the sample type's schema
    assert len(backend.requests) == 1
    request = backend.requests[0]
    assert request.n == 3
    assert request.constraint is not None
    assert set(request.constraint.value["required"]) == {"rationale", "answer"}
    assert "What is 6 x 7?" in request.messages[-1].content


def test_registering_a_kind_twice_is_refused_unless_replaced() -> None:
    register_backend("toy", toy_factory, help="first")
    with pytest.raises(ConfigError, match="backend kind 'toy' is already registered; pass replace=True"):
        register_backend("toy", toy_factory, help="second")
    assert backend_kinds()["toy"] == "first"

    register_backend("toy", lambda **kw: ToyBackend("replaced"), help="second", replace=True)
    assert backend_kinds()["toy"] == "second"
    assert make_backend("toy").model == "replaced"


def test_a_built_in_kind_cannot_be_overwritten_by_accident() -> None:
    with pytest.raises(ConfigError, match="'vllm' is already registered"):
        register_backend("vllm", toy_factory, help="not vllm")
    assert "vLLM" in backend_kinds()["vllm"]


def test_an_unknown_kind_is_one_line_listing_the_kinds() -> None:
    with pytest.raises(ConfigError) as info:
        make_backend("x")
    assert str(info.value) == "unknown backend 'x'; available: llamacpp, vllm, openai"

    register_backend("toy", toy_factory, help="canned")
    with pytest.raises(ConfigError, match=r"available: llamacpp, vllm, openai, toy$"):
        make_backend("nope")


def test_a_factory_that_returns_no_backend_is_named() -> None:
    register_backend("broken", lambda **kw: object(), help="returns a plain object")
    with pytest.raises(ConfigError, match="factory of backend 'broken' returned a 'object' value, which is not a Backend"):
        make_backend("broken")


@pytest.mark.parametrize(
    ("kind", "factory", "help", "pattern"),
    [
        ("", toy_factory, "h", "not a valid name"),
        ("two words", toy_factory, "h", "not a valid name"),
        ("toy", "not callable", "h", "is not callable"),
        ("toy", toy_factory, "", "help must be one non-empty line"),
        ("toy", toy_factory, "two\nlines", "help must be one non-empty line"),
    ],
)
def test_bad_registrations_are_config_errors(kind: str, factory: Any, help: str, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        register_backend(kind, factory, help=help)
    assert "toy" not in backend_kinds()
