"""The Verifier protocol: how agentkit checks what a model said.

A verifier looks at one candidate (a model's answer, solution text or typed output) plus optional
context (the question, the gold label, ...) and returns a :class:`Verdict`. *Hard* verifiers gate:
the graph runtime drops or retries candidates whose verdict is ``ok=False``. *Soft* verifiers score:
their ``score`` ranks or weights candidates and ``ok`` may be ``None`` ("no opinion").

``verify`` is synchronous on purpose: verifiers are usually CPU-bound (a parser, a prover), so the
runtime runs them in a worker thread instead of forcing every author to write async code.
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, Protocol, overload, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from agentkit.errors import VerifierError
from agentkit.tracing import VERIFIER_SCORE, VERIFIER_VERDICT, tool_span

__all__ = ["FunctionVerifier", "Verdict", "Verifier", "VerifierBase", "verifier"]


class Verdict(BaseModel):
    """One verifier's judgement of one candidate.

    ``ok`` is the gate (``None`` = the verifier abstains, e.g. a soft scorer or a prover timeout);
    ``score`` is for ranking (conventionally in [0, 1], not enforced: log-probs are fine);
    ``label`` is a short machine-readable outcome ("pass", "consistent", "True", ...) that goes on
    the trace; ``reason`` is for humans reading the trace.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    ok: bool | None
    score: float | None = None
    label: str = Field(min_length=1)
    reason: str


@runtime_checkable
class Verifier(Protocol):
    """Anything with ``name``, ``hard`` and a sync ``verify`` is a verifier."""

    name: str
    hard: bool

    def verify(self, candidate: Any, context: Mapping[str, Any] | None = None) -> Verdict: ...


class VerifierBase(ABC):
    """Convenience base: subclasses implement :meth:`check`; ``verify`` adds tracing and errors.

    Every call is one ``execute_tool {name}`` span carrying the verdict label, and any exception
    from :meth:`check` becomes a :class:`~agentkit.errors.VerifierError` naming this verifier, so a
    buggy verifier never looks like a wrong candidate.
    """

    name: str
    hard: bool

    def __init__(self, name: str, *, hard: bool = True) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError("a verifier needs a non-empty string name")
        self.name = name
        self.hard = hard

    @abstractmethod
    def check(self, candidate: Any, context: Mapping[str, Any]) -> Verdict:
        """Judge ``candidate``; ``context`` is never None here (an empty mapping instead)."""

    def verify(self, candidate: Any, context: Mapping[str, Any] | None = None) -> Verdict:
        with tool_span(self.name, {"agentkit.verifier.hard": self.hard}) as span:
            try:
                verdict = self.check(candidate, context if context is not None else {})
            except VerifierError:
                raise
            except Exception as exc:
                raise VerifierError(
                    f"verifier {self.name!r} raised {type(exc).__name__}: {exc}"
                ) from exc
            if not isinstance(verdict, Verdict):
                raise VerifierError(
                    f"verifier {self.name!r} returned {type(verdict).__name__}, expected a Verdict"
                )
            if span.is_recording():
                span.set_attribute(VERIFIER_VERDICT, verdict.label)
                if verdict.score is not None:
                    span.set_attribute(VERIFIER_SCORE, verdict.score)
            return verdict

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, hard={self.hard})"


class FunctionVerifier(VerifierBase):
    """A verifier made from a plain function by :func:`verifier`.

    The function may return:

    * a :class:`Verdict` — passed through unchanged;
    * a ``bool`` — ``ok=<bool>``, ``score`` 1.0/0.0, label ``"pass"``/``"fail"``;
    * a real number — a *score*. A soft verifier reports ``ok=None`` (it only ranks). A hard
      verifier needs a ``threshold`` to turn the score into a gate (``ok = score >= threshold``);
      without one a numeric return is an error, because silently gating on truthiness of a float
      would pass every non-zero score.

    The function takes ``(candidate, context)``, or just ``(candidate)`` if it needs no context.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        hard: bool = True,
        threshold: float | None = None,
    ) -> None:
        super().__init__(name or getattr(fn, "__name__", "verifier"), hard=hard)
        self.fn = fn
        self.threshold = threshold
        self._takes_context = _accepts_two_args(fn)
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def check(self, candidate: Any, context: Mapping[str, Any]) -> Verdict:
        result = self.fn(candidate, context) if self._takes_context else self.fn(candidate)
        return self._to_verdict(result)

    def __call__(self, candidate: Any, context: Mapping[str, Any] | None = None) -> Verdict:
        return self.verify(candidate, context)

    def _to_verdict(self, result: Any) -> Verdict:
        if isinstance(result, Verdict):
            return result
        if isinstance(result, bool):
            return Verdict(
                ok=result,
                score=1.0 if result else 0.0,
                label="pass" if result else "fail",
                reason=f"{self.name} returned {result}",
            )
        if isinstance(result, int | float) and not isinstance(result, bool):
            score = float(result)
            if not math.isfinite(score):
                raise VerifierError(f"verifier {self.name!r} returned a non-finite score {result!r}")
            if self.threshold is not None:
                ok = score >= self.threshold
                return Verdict(
                    ok=ok,
                    score=score,
                    label="pass" if ok else "fail",
                    reason=f"{self.name} scored {score:g} (threshold {self.threshold:g})",
                )
            if self.hard:
                raise VerifierError(
                    f"hard verifier {self.name!r} returned a score ({score:g}) but has no threshold: "
                    "return a bool/Verdict, pass threshold=..., or declare it hard=False"
                )
            return Verdict(ok=None, score=score, label="scored", reason=f"{self.name} scored {score:g}")
        raise VerifierError(
            f"verifier {self.name!r} returned {type(result).__name__}; expected Verdict, bool or a number"
        )


def _accepts_two_args(fn: Callable[..., Any]) -> bool:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return True
    params = list(sig.parameters.values())
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if not positional:
        raise TypeError(f"verifier function {fn!r} must take the candidate as its first argument")
    return len(positional) >= 2


@overload
def verifier(fn: Callable[..., Any], /) -> FunctionVerifier: ...
@overload
def verifier(
    *, name: str | None = None, hard: bool = True, threshold: float | None = None
) -> Callable[[Callable[..., Any]], FunctionVerifier]: ...


def verifier(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    hard: bool = True,
    threshold: float | None = None,
) -> FunctionVerifier | Callable[[Callable[..., Any]], FunctionVerifier]:
    """Turn ``f(candidate, context) -> Verdict | bool | float`` into a :class:`Verifier`.

    Usable bare (``@verifier``) or with options (``@verifier(name="len", hard=False)``); see
    :class:`FunctionVerifier` for how return values become verdicts.
    """

    def wrap(f: Callable[..., Any]) -> FunctionVerifier:
        return FunctionVerifier(f, name=name, hard=hard, threshold=threshold)

    if fn is not None:
        return wrap(fn)
    return wrap
