"""One example, run once: the per-example code shared by the local runner and the Ray actors.

It lives apart from the runner so a Ray actor (``agentkit.eval._ray_worker``) runs exactly the same
steps as ``agentkit.eval.runner`` does in-process: same stats, same grading, same error taxonomy
(finished / lost / fatal, told in the runner's docstring). What it returns is picklable, so an actor
can send it back to the driver, which alone writes results.jsonl.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agentkit import stats
from agentkit.errors import (
    BackendUnavailable,
    ConfigError,
    GenerationTimeout,
    NoValidSample,
    SchemaViolation,
    TransientBackendError,
)
from agentkit.eval.datasets import Example
from agentkit.eval.metrics import ExampleResult, ModelUsage, Usage
from agentkit.eval.scoring import grade
from agentkit.pattern import Pattern

_LOG = logging.getLogger(__name__)

#: called with (example id, exception) when an example ends in an error (the runner logs one per type)
Warn = Callable[[str, Exception], None]


@dataclass(frozen=True)
class Lost:
    """An example the backend failed: nothing is written, --resume runs it again."""

    id: str
    reason: str
    dead: bool  # the backend is gone for good: stop now


def describe(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    notes = getattr(exc, "__notes__", None)
    return f"{text} ({'; '.join(notes)})" if notes else text


def jsonable(value: Any) -> Any:
    """Knobs and extras may hold objects (a second backend); store a stable description of them."""

    def _describe(obj: Any) -> str:
        model = getattr(obj, "model", None)
        return f"<{type(obj).__name__}{' ' + str(model) if model else ''}>"

    return json.loads(json.dumps(value, default=_describe, sort_keys=True))


def usage_of(run: stats.RunStats) -> Usage:
    by_model = {m: ModelUsage.model_validate(u, from_attributes=True) for m, u in run.by_model.items()}
    return Usage(input_tokens=run.usage.input_tokens, output_tokens=run.usage.output_tokens,
                 cached_tokens=run.usage.cached_tokens, by_model=by_model)


class WarnOnce:
    """One log line per error type, not one per example; the traceback at DEBUG."""

    def __init__(self) -> None:
        self._warned: set[str] = set()

    def __call__(self, example_id: str, exc: Exception) -> None:
        kind = type(exc).__name__
        if kind not in self._warned:
            self._warned.add(kind)
            _LOG.warning("example %s failed with %s: %s (recorded in results.jsonl; later ones of this type are "
                         "not logged)", example_id, kind, exc)
            _LOG.debug("traceback of example %s", example_id, exc_info=exc)


async def attempt(pattern: Pattern, graph: Any, example: Example, *, answer_kind: str,
                  labels: Sequence[str] | None, warn: Warn) -> ExampleResult | Lost:
    """Run ``example`` through the compiled ``graph`` and grade it; ConfigError propagates (fatal)."""
    start = time.perf_counter()
    prediction: str | None = None
    extra: Mapping[str, Any] = {}
    error: Exception | None = None
    with stats.collect() as run:
        try:
            assert pattern.input_from is not None and pattern.prediction is not None
            output = await graph.ainvoke(pattern.input_from(example))
            try:
                prediction = pattern.prediction(output)
            except NoValidSample as exc:  # no answer, scored wrong; its extras still count
                error = exc
                warn(example.id, exc)
            if pattern.extras is not None:
                extra = pattern.extras(output)
        except BackendUnavailable as exc:
            return Lost(example.id, describe(exc), dead=True)
        except (TransientBackendError, GenerationTimeout, ConnectionError) as exc:  # says nothing of the answer
            return Lost(example.id, describe(exc), dead=False)
        except ConfigError:
            raise
        except Exception as exc:  # the example failed; the run goes on
            error = exc
            warn(example.id, exc)
    if prediction is not None and not isinstance(prediction, str):
        prediction = str(prediction)
    schema_valid = run.valid_samples == run.samples if run.samples else None
    if isinstance(error, SchemaViolation):
        schema_valid = False
    return ExampleResult(
        id=example.id,
        prediction=prediction,
        label=example.label,
        correct=error is None and grade(prediction, example.label, answer_kind, labels),  # type: ignore[arg-type]
        usage=usage_of(run),
        latency_s=time.perf_counter() - start,
        error=None if error is None else describe(error),
        error_type=None if error is None else type(error).__name__,
        schema_valid=schema_valid,
        calls=run.calls,
        requests_by_server=dict(run.by_server) or None,
        extra=jsonable(dict(extra, samples=run.samples, valid_samples=run.valid_samples)),
    )
