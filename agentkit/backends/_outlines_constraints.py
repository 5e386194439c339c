"""Output formatting for llama.cpp: an OutputConstraint -> an outlines logits processor.

Outlines reports some failures only as warnings (llguidance's "ParserTooComplex" was seen to
warn and then return unconstrained text), so warnings raised while compiling are turned into
``UnsupportedConstraint`` errors here instead of being left to scroll by.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

from agentkit.backends.base import OutputConstraint
from agentkit.errors import UnsupportedConstraint

#: llguidance compiles in well under a second and needs no JIT; outlines_core needs numba, whose
#: first JIT compile costs ~20 s per process.
DEFAULT_ENGINE = "llguidance"


def _llguidance_schema(constraint: OutputConstraint) -> str:
    schema = dict(constraint.value) if isinstance(constraint.value, dict) else json.loads(constraint.value)
    if constraint.whitespace == "compact":
        schema.setdefault("x-guidance", {"whitespace_flexible": False, "key_separator": ":", "item_separator": ","})
    return json.dumps(schema)


def compile_processor(outlines_model: Any, constraint: OutputConstraint, engine: str = DEFAULT_ENGINE) -> Any:
    from outlines.backends import (
        get_cfg_logits_processor,
        get_json_schema_logits_processor,
        get_regex_logits_processor,
    )

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if constraint.kind == "json_schema" and engine == "llguidance":
                processor = get_json_schema_logits_processor(engine, outlines_model, _llguidance_schema(constraint), None)
            elif constraint.kind == "json_schema":
                schema = constraint.value if isinstance(constraint.value, str) else json.dumps(constraint.value)
                spacing = r"" if constraint.whitespace == "compact" else None
                processor = get_json_schema_logits_processor(engine, outlines_model, schema, spacing)
            elif constraint.kind == "regex":
                processor = get_regex_logits_processor(engine, outlines_model, constraint.value)
            else:
                processor = get_cfg_logits_processor("llguidance", outlines_model, constraint.value)
        except Exception as exc:  # outlines/outlines_core/llguidance raise assorted types
            raise UnsupportedConstraint(
                f"llama.cpp backend cannot compile this {constraint.kind} constraint: {exc}; "
                "simplify the output type (no recursive models, bounded strings) or the grammar"
            ) from None
    raise_on_warnings(caught, constraint.kind)
    _validate_llguidance(processor, constraint.kind)
    return processor


def _validate_llguidance(processor: Any, kind: str) -> None:
    """llguidance builds its matcher lazily at the first token and, on a bad grammar, only warns
    while generation continues unconstrained; validate up front instead."""
    grammar = getattr(processor, "grammar", None)
    tokenizer = getattr(processor, "llg_tokenizer", None)
    if grammar is None or tokenizer is None:
        return
    from llguidance import LLMatcher

    is_error, messages = LLMatcher.validate_grammar_with_warnings(grammar, tokenizer)
    if is_error or messages:
        first = (messages[0] if messages else "invalid grammar").strip().splitlines()[0]
        raise UnsupportedConstraint(
            f"llama.cpp backend cannot compile this {kind} constraint: {first}; fix the grammar or simplify it"
        )


def matcher_error(processor: Any) -> str | None:
    """The first error an llguidance matcher hit while generating (e.g. ParserTooComplex)."""
    for matcher in getattr(processor, "ll_matchers", None) or ():
        if matcher.is_error():
            return str(matcher.get_error())
    return None


def raise_on_warnings(caught: list[warnings.WarningMessage], kind: str) -> None:
    relevant = [w for w in caught if issubclass(w.category, (UserWarning, RuntimeWarning))]
    if relevant:
        raise UnsupportedConstraint(
            f"the {kind} constraint was not applied: {relevant[0].message}; "
            "simplify it (a grammar needs explicit spacing and no %ignore)"
        )
