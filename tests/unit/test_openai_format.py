"""The chat-completions wire format and the in-process vLLM mapping, offline and exact."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from llguidance import LLMatcher
from pydantic import BaseModel, Field

from agentkit.backends._openai_format import (
    chat_body,
    error_for_status,
    llguidance_lark,
    parse_reply,
    vllm_structured_outputs,
)
from agentkit.backends._vllm_format import generation_from, sampling_kwargs
from agentkit.backends.base import GenerationRequest, Message, OutputConstraint, Sampling
from agentkit.decoding import constraint_for, parse_choice
from agentkit.errors import (
    BackendError,
    ConfigError,
    ModelNotFound,
    TransientBackendError,
    TruncatedOutput,
    UnsupportedConstraint,
)
from agentkit.verifiers.fol import fol_grammar

URL = "http://127.0.0.1:9/v1/chat/completions"


class Pet(BaseModel):
    name: str = Field(max_length=20)
    legs: int


def request(constraint: OutputConstraint | None = None, **sampling: object) -> GenerationRequest:
    return GenerationRequest(
        messages=(Message(role="system", content="be brief"), Message(role="user", content="a dog")),
        n=3,
        sampling=Sampling(**sampling),  # type: ignore[arg-type]
        constraint=constraint,
    )


def reply(*choices: tuple[int, str | None, str | None], usage: dict | None = None) -> dict:
    return {
        "model": "m",
        "choices": [{"index": i, "message": {"content": t}, "finish_reason": f} for i, t, f in choices],
        "usage": usage,
    }


# -- request bodies ------------------------------------------------------------------------------


def test_body_carries_messages_n_and_sampling() -> None:
    body = chat_body(request(temperature=0.7, top_p=0.9, max_tokens=50, stop=("END",), seed=11), "smol", "vllm")
    assert body == {
        "model": "smol",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "a dog"}],
        "n": 3,
        "temperature": 0.7,
        "top_p": 0.9,
        "max_tokens": 50,
        "stream": False,
        "stop": ["END"],
        "seed": 11,
    }


def test_body_omits_unset_seed_and_stop() -> None:
    body = chat_body(request(), "smol", "vllm")
    assert "seed" not in body and "stop" not in body


def test_vllm_json_schema_goes_in_response_format_with_compact_whitespace() -> None:
    constraint = constraint_for(Pet)
    body = chat_body(request(constraint), "smol", "vllm")
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "Pet"
    schema = fmt["json_schema"]["schema"]
    assert schema["x-guidance"] == {"whitespace_flexible": False, "item_separator": ",", "key_separator": ":"}
    assert schema["properties"] == constraint.value["properties"]
    assert "x-guidance" not in constraint.value  # the caller's schema is not mutated
    assert not {"guided_json", "guided_grammar", "guided_regex", "structured_outputs"} & set(body)


def test_vllm_flexible_whitespace_sends_the_schema_unchanged() -> None:
    constraint = constraint_for(Pet).model_copy(update={"whitespace": "flexible"})
    body = chat_body(request(constraint), "smol", "vllm")
    assert body["response_format"]["json_schema"]["schema"] == constraint.value


@pytest.mark.parametrize(
    "kind, value, field", [("regex", r"[0-9]{2}", "regex"), ("grammar", 'start: "yes" | "no"\n', "grammar")]
)
def test_vllm_regex_and_grammar_go_in_structured_outputs(kind: str, value: str, field: str) -> None:
    body = chat_body(request(OutputConstraint(kind=kind, value=value)), "smol", "vllm")  # type: ignore[arg-type]
    assert body["structured_outputs"] == {field: value}
    assert "response_format" not in body
    assert not any(k.startswith("guided_") for k in body)  # vLLM 0.32 silently ignores those


def test_empty_regex_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="non-empty string"):
        chat_body(request(OutputConstraint(kind="regex", value="  ")), "smol", "vllm")


def test_openai_dialect_refuses_regex_and_grammar_up_front() -> None:
    with pytest.raises(UnsupportedConstraint, match="no regex constraint"):
        chat_body(request(OutputConstraint(kind="regex", value="a+")), "gpt", "openai")
    with pytest.raises(UnsupportedConstraint, match="no grammar constraint"):
        chat_body(request(OutputConstraint(kind="grammar", value='start: "a"')), "gpt", "openai")


def test_openai_dialect_sends_plain_strict_schema() -> None:
    constraint = constraint_for(Pet)
    body = chat_body(request(constraint), "gpt", "openai", strict=True)
    assert body["response_format"]["json_schema"] == {"name": "Pet", "schema": constraint.value, "strict": True}
    assert chat_body(request(constraint), "gpt", "openai", n=1)["n"] == 1


def test_schema_name_is_sanitised_for_openai() -> None:
    schema = {"title": "My Output/v2 (final)", "type": "object", "properties": {}}
    body = chat_body(request(OutputConstraint(kind="json_schema", value=schema)), "gpt", "openai")
    assert body["response_format"]["json_schema"]["name"] == "My_Output_v2__final_"


# -- Lark -> llguidance ---------------------------------------------------------------------------


def test_lark_ranges_become_llguidance_braces_outside_literals() -> None:
    grammar = 'start: a (" b~1..2" a)~1..7 /x~2/ // c ~ 3\nb: a ~ 3\nc: a~ 2 .. 4\n'
    assert llguidance_lark(grammar) == 'start: a (" b~1..2" a){1,7} /x~2/ // c ~ 3\nb: a {3}\nc: a{2,4}\n'


def test_escaped_quotes_do_not_end_a_literal() -> None:
    grammar = r'start: "say \"~1..2\"" x~2' + "\n"
    assert llguidance_lark(grammar) == r'start: "say \"~1..2\"" x{2}' + "\n"


def test_rewritten_fol_grammar_is_valid_llguidance() -> None:
    grammar = fol_grammar(predicates=[("Dog", 1), ("Likes", 2)], constants=["rex"], max_depth=3)
    assert "~" in grammar  # the source uses Lark ranges, which vLLM 0.32's llguidance rejects
    rewritten = llguidance_lark(grammar)
    assert "~" not in rewritten
    assert LLMatcher.validate_grammar(LLMatcher.grammar_from_lark(rewritten)) == ""
    assert vllm_structured_outputs(OutputConstraint(kind="grammar", value=grammar)) == {"grammar": rewritten}


# -- replies --------------------------------------------------------------------------------------


def test_reply_choices_are_ordered_and_usage_splits_cached_tokens() -> None:
    payload = reply(
        (1, '{"name":"b","legs":4}', "stop"),
        (0, '{"name":"a","legs":4}', "stop"),
        usage={"prompt_tokens": 100, "completion_tokens": 20, "prompt_tokens_details": {"cached_tokens": 64}},
    )
    gen = parse_reply(payload, url=URL, expected=2)
    assert [c.text for c in gen.choices] == ['{"name":"a","legs":4}', '{"name":"b","legs":4}']
    assert (gen.usage.input_tokens, gen.usage.cached_tokens, gen.usage.output_tokens) == (36, 64, 20)
    assert gen.model == "m"


def test_usage_without_details_counts_all_prompt_tokens_as_input() -> None:
    gen = parse_reply(reply((0, "{}", "stop"), usage={"prompt_tokens": 9, "completion_tokens": 2}), url=URL, expected=1)
    assert (gen.usage.input_tokens, gen.usage.cached_tokens) == (9, 0)
    gen = parse_reply(
        reply((0, "{}", "stop"), usage={"prompt_tokens": 9, "completion_tokens": 2, "prompt_tokens_details": None}),
        url=URL,
        expected=1,
    )
    assert gen.usage.cached_tokens == 0


def test_length_finish_reason_reaches_validation_as_truncation() -> None:
    gen = parse_reply(reply((0, '{"name":"Rex","le', "length")), url=URL, expected=1)
    assert gen.choices[0].finish_reason == "length"
    with pytest.raises(TruncatedOutput, match="max_tokens"):
        parse_choice(Pet, gen.choices[0])


def test_refusal_becomes_an_empty_refused_choice() -> None:
    payload = {"choices": [{"index": 0, "message": {"content": None, "refusal": "no"}, "finish_reason": "stop"}]}
    gen = parse_reply(payload, url=URL, expected=1)
    assert (gen.choices[0].text, gen.choices[0].finish_reason) == ("", "refusal")


def test_fewer_choices_than_n_is_an_error_naming_the_endpoint() -> None:
    with pytest.raises(BackendError, match=r"returned 1 choices for n=3.*supports_n=False"):
        parse_reply(reply((0, "{}", "stop")), url=URL, expected=3)


def test_non_completion_reply_is_a_backend_error() -> None:
    with pytest.raises(BackendError, match=r"127.0.0.1:9.*not a chat completion \(choices"):
        parse_reply({"object": "list"}, url=URL, expected=1)


# -- HTTP errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status, body, exc, pattern",
    [
        (503, '{"error": {"message": "overloaded"}}', TransientBackendError, "HTTP 503: overloaded"),
        (500, "EngineCore encountered an issue", TransientBackendError, "HTTP 500: EngineCore"),
        (429, '{"error": {"message": "slow down"}}', TransientBackendError, "slow down"),
        (401, '{"error": {"message": "bad key"}}', ConfigError, "check the API key"),
        (404, '{"error": {"message": "The model `x` does not exist."}}', ModelNotFound, "does not serve model 'x'"),
        (404, '{"detail": "Not Found"}', ConfigError, "ending in /v1"),
        (
            400,
            '{"error": {"message": "Invalid schema for response_format"}}',
            UnsupportedConstraint,
            "rejected the json_schema",
        ),
        (400, '{"error": {"message": "max_tokens is too large"}}', ConfigError, "rejecting the request: max_tokens"),
    ],
)
def test_status_codes_map_to_typed_errors(status: int, body: str, exc: type, pattern: str) -> None:
    err = error_for_status(status, body, url=URL, model="x", constraint=constraint_for(Pet))
    assert type(err) is exc
    assert URL in str(err)
    assert pattern in str(err)


# -- in-process vLLM mapping ----------------------------------------------------------------------


def test_engine_sampling_kwargs_share_the_server_structured_outputs() -> None:
    kwargs = sampling_kwargs(request(constraint_for(Pet), temperature=0.5, max_tokens=30, seed=2, stop=("x",)))
    assert kwargs["n"] == 3 and kwargs["seed"] == 2 and kwargs["stop"] == ["x"] and kwargs["max_tokens"] == 30
    assert kwargs["structured_outputs"]["json"]["x-guidance"]["whitespace_flexible"] is False
    assert "structured_outputs" not in sampling_kwargs(request(temperature=0.5))


def test_engine_decodes_greedy_requests_once_and_repeats_them() -> None:
    assert sampling_kwargs(request())["n"] == 1  # temperature 0: vLLM refuses n > 1
    sample = SimpleNamespace(index=0, text="x", token_ids=[5], finish_reason="stop")
    out = SimpleNamespace(prompt_token_ids=[1, 2], num_cached_tokens=0, outputs=[sample])
    gen = generation_from(out, "smol", 3)
    assert [c.text for c in gen.choices] == ["x", "x", "x"] and gen.usage.output_tokens == 1


def test_engine_output_becomes_a_generation() -> None:
    out = SimpleNamespace(
        prompt_token_ids=list(range(50)),
        num_cached_tokens=32,
        outputs=[
            SimpleNamespace(index=1, text="b", token_ids=[1, 2], finish_reason="length"),
            SimpleNamespace(index=0, text="a", token_ids=[1], finish_reason="stop"),
        ],
    )
    gen = generation_from(out, "smol")
    assert [(c.text, c.finish_reason) for c in gen.choices] == [("a", "stop"), ("b", "length")]
    assert (gen.usage.input_tokens, gen.usage.cached_tokens, gen.usage.output_tokens) == (18, 32, 3)
    assert json.loads(gen.model_dump_json())["model"] == "smol"
