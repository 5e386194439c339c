"""The Verifier protocol, the @verifier decorator, Verdict, tracing and error wrapping."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import BaseModel, ValidationError

from agentkit.errors import AgentkitError, VerifierError
from agentkit.verifiers import (
    AnswerMatchVerifier,
    ArithmeticVerifier,
    FunctionVerifier,
    Verdict,
    Verifier,
    VerifierBase,
    verifier,
)

ROOT = Path(__file__).resolve().parents[2]


def _only(exporter: InMemorySpanExporter) -> ReadableSpan:
    finished = exporter.get_finished_spans()
    assert len(finished) == 1, [s.name for s in finished]
    return finished[0]


# ----------------------------------------------------------------------------------- Verdict
def test_verdict_is_frozen_and_validated() -> None:
    v = Verdict(ok=True, score=1.0, label="pass", reason="fine")
    with pytest.raises(ValidationError):
        v.ok = False  # type: ignore[misc]
    with pytest.raises(ValidationError):
        Verdict(ok=True, label="", reason="empty label")
    with pytest.raises(ValidationError):
        Verdict(ok=None, score=float("nan"), label="scored", reason="nan")
    with pytest.raises(ValidationError):
        Verdict(ok=True, label="pass", reason="x", extra="no")  # type: ignore[call-arg]
    assert Verdict(ok=None, label="abstain", reason="timeout").score is None


# --------------------------------------------------------------------------------- decorator
def test_bool_result_becomes_pass_fail() -> None:
    @verifier
    def non_empty(candidate: str, context: Mapping[str, Any]) -> bool:
        return bool(candidate.strip())

    assert isinstance(non_empty, Verifier)
    assert non_empty.name == "non_empty" and non_empty.hard is True
    expected = Verdict(ok=True, score=1.0, label="pass", reason="non_empty returned True")
    assert non_empty.verify("x") == expected
    failed = non_empty.verify("  ", {})
    assert (failed.ok, failed.score, failed.label) == (False, 0.0, "fail")


def test_one_argument_function_gets_no_context() -> None:
    @verifier(name="short")
    def short(candidate: str) -> bool:
        return len(candidate) < 5

    assert short.name == "short"
    assert short.verify("abc", {"ignored": 1}).ok is True
    assert short("abcdef").ok is False  # calling the verifier is verify()


def test_soft_verifier_scores_without_gating() -> None:
    @verifier(hard=False)
    def length_score(candidate: str, context: Mapping[str, Any]) -> float:
        return len(candidate) / context["max"]

    v = length_score.verify("abcd", {"max": 8})
    assert (v.ok, v.score, v.label) == (None, 0.5, "scored")


def test_hard_verifier_needs_a_threshold_for_scores() -> None:
    @verifier
    def score_only(candidate: Any) -> float:
        return 0.7

    with pytest.raises(VerifierError, match="score_only.*threshold"):
        score_only.verify("x")

    @verifier(threshold=0.5)
    def gated(candidate: Any) -> float:
        return candidate

    assert gated.verify(0.7).ok is True and gated.verify(0.7).score == 0.7
    assert gated.verify(0.2).ok is False
    with pytest.raises(VerifierError, match="non-finite"):
        gated.verify(float("inf"))


def test_verdict_results_pass_through() -> None:
    verdict = Verdict(ok=False, score=0.25, label="custom", reason="because")

    @verifier(name="custom")
    def custom(candidate: Any, context: Mapping[str, Any]) -> Verdict:
        return verdict

    assert custom.verify(None) is verdict


def test_exceptions_become_verifier_errors_naming_the_verifier() -> None:
    @verifier(name="fragile")
    def fragile(candidate: Any, context: Mapping[str, Any]) -> bool:
        return context["missing"]

    with pytest.raises(VerifierError, match="'fragile' raised KeyError") as info:
        fragile.verify("x", {})
    assert isinstance(info.value.__cause__, KeyError)
    assert isinstance(info.value, AgentkitError)


def test_wrong_return_type_is_a_verifier_error() -> None:
    @verifier(name="chatty")
    def chatty(candidate: Any) -> Any:
        return "looks good"

    with pytest.raises(VerifierError, match="'chatty' returned str"):
        chatty.verify("x")


def test_function_needs_a_candidate_parameter() -> None:
    with pytest.raises(TypeError):
        verifier(lambda: True)


# -------------------------------------------------------------------------------- protocol
class _DuckVerifier:
    name = "duck"
    hard = False

    def verify(self, candidate: Any, context: Mapping[str, Any] | None = None) -> Verdict:
        return Verdict(ok=None, score=0.0, label="scored", reason="duck")


def test_protocol_matches_builtin_and_duck_typed_verifiers() -> None:
    for v in (ArithmeticVerifier(), AnswerMatchVerifier(), _DuckVerifier(), verifier(lambda c: True)):
        assert isinstance(v, Verifier), v
    assert not isinstance(object(), Verifier)


def test_subclassing_verifier_base() -> None:
    class Contains(VerifierBase):
        def __init__(self, needle: str) -> None:
            super().__init__(f"contains_{needle}", hard=True)
            self.needle = needle

        def check(self, candidate: Any, context: Mapping[str, Any]) -> Verdict:
            assert context == {}  # None becomes an empty mapping
            ok = self.needle in candidate
            return Verdict(ok=ok, score=float(ok), label="found" if ok else "absent", reason=self.needle)

    v = Contains("cat")
    assert v.verify("a cat").label == "found"
    assert v.verify("a dog", None).ok is False
    assert "contains_cat" in repr(v)


# --------------------------------------------------------------------------------- tracing
def test_each_verify_is_one_execute_tool_span_with_the_verdict(spans: InMemorySpanExporter) -> None:
    v = ArithmeticVerifier()
    v.verify("2 + 2 = <<2+2=5>>5")
    span = _only(spans)
    assert span.name == "execute_tool arithmetic"
    assert span.attributes["gen_ai.operation.name"] == "execute_tool"
    assert span.attributes["gen_ai.tool.name"] == "arithmetic"
    assert span.attributes["agentkit.verifier.verdict"] == "inconsistent"
    assert span.attributes["agentkit.verifier.score"] == 0.0


def test_failing_verifier_span_records_the_error(spans: InMemorySpanExporter) -> None:
    @verifier(name="boom")
    def boom(candidate: Any) -> bool:
        raise RuntimeError("kaput")

    with pytest.raises(VerifierError):
        boom.verify("x")
    span = _only(spans)
    assert span.name == "execute_tool boom"
    assert span.attributes["error.type"] == "VerifierError"
    assert "agentkit.verifier.verdict" not in span.attributes


def test_function_verifier_keeps_the_wrapped_function() -> None:
    def rule(candidate: Any) -> bool:
        """Docs survive."""
        return True

    v = FunctionVerifier(rule, hard=False)
    assert v.__wrapped__ is rule and v.__doc__ == "Docs survive." and v.hard is False


class _Answer(BaseModel):
    answer: str


def test_typed_candidates_reach_the_function() -> None:
    @verifier
    def is_yes(candidate: _Answer) -> bool:
        return candidate.answer == "yes"

    assert is_yes.verify(_Answer(answer="yes")).ok is True


def test_custom_verifier_example_runs() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "custom_verifier.py")],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,  # it runs the real SmolLM2
    )
    assert result.returncode == 0, result.stderr
    assert "SmolLM2 -> work=" in result.stdout and "shows_its_work: ok=" in result.stdout
    assert "arithmetic: ok=False score=0.0 label='inconsistent'" in result.stdout
    assert "13*2 = 24 (actually 26)" in result.stdout
