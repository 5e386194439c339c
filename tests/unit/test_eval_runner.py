"""Eval runner mechanics on replayed real SmolLM2 generations (tests/cassettes/eval_gsm8k.jsonl).

What is checked exactly: one fsync'd line per finished example, resume skips finished ids and
never duplicates one, a partial last line is repaired, per-example errors are results, a dead
backend stops the run with unfinished examples NOT written, the concurrency limit holds, and a
resume into a directory holding another run is refused.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from agentkit.backends.base import Generation, GenerationRequest
from agentkit.backends.replay import ReplayBackend
from agentkit.errors import BackendUnavailable, CassetteMiss, ConfigError, GenerationTimeout, TransientBackendError
from agentkit.eval import load_dataset
from agentkit.eval.metrics import read_results
from agentkit.eval.runner import EvalDataset, evaluate, select_dataset
from tests.helpers import Recording

CASSETTE = "eval_gsm8k"
MCCOT = {"k": 2, "seed": 7, "max_tokens": 160}  # the knobs the cassette was recorded with


def _lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]


def _ids(out: Path) -> list[str]:
    return [r["id"] for r in _lines(out)]


class DiesAfter:
    """Serves ``ok`` requests, then every request fails with ``error`` (a server that went away)."""

    def __init__(self, inner, ok: int, error: type[Exception]) -> None:
        self.inner, self.ok, self.error = inner, ok, error
        self.provider, self.model = inner.provider, inner.model
        self.served = 0
        self.refused = 0

    async def generate(self, request: GenerationRequest) -> Generation:
        if self.served >= self.ok:
            self.refused += 1
            raise self.error("simulated: connection refused")
        self.served += 1
        return await self.inner.generate(request)


class FailsOn:
    """Fails every request whose question contains ``needle`` with ``error`` (transient by default);
    the rest pass."""

    def __init__(self, inner, needle: str, error: Exception | None = None) -> None:
        self.inner, self.needle = inner, needle
        self.error = error or TransientBackendError("simulated: connection reset")
        self.provider, self.model = inner.provider, inner.model

    async def generate(self, request: GenerationRequest) -> Generation:
        if self.needle in request.messages[-1].content:
            raise self.error
        return await self.inner.generate(request)


@pytest.fixture
def gsm8k() -> EvalDataset:
    return select_dataset("gsm8k", limit=8)


def test_results_summary_manifest_and_report(replay, tmp_path: Path, gsm8k: EvalDataset) -> None:
    out = tmp_path / "run"
    outcome = evaluate("direct", gsm8k, replay(CASSETTE), out)
    assert outcome.complete and outcome.stopped is None
    assert (outcome.selected, outcome.skipped, outcome.finished) == (8, 0, 8)
    rows = _lines(out)
    assert sorted(r["id"] for r in rows) == sorted(e.id for e in gsm8k.examples)
    labels = {e.id: e.label for e in gsm8k.examples}
    for r in rows:
        assert set(r) >= {"id", "prediction", "label", "correct", "usage", "latency_s", "error", "error_type",
                          "schema_valid", "calls", "extra"}
        assert r["label"] == labels[r["id"]]
        assert r["calls"] == 1 and r["error"] is None and r["schema_valid"] is True
        assert r["usage"]["output_tokens"] > 0 and r["usage"]["by_model"]
        # graded by numeric match, so the stored verdict must agree with a re-grade
        from agentkit.verifiers.answer import answers_match
        assert r["correct"] == answers_match(r["prediction"], r["label"], "number")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pattern"] == "direct" and summary["dataset"] == "gsm8k"
    assert summary["n"] == 8 and summary["correct"] == sum(r["correct"] for r in rows)
    assert summary["input_tokens"] == sum(r["usage"]["input_tokens"] for r in rows)
    for key in ("accuracy", "errors", "schema_validity", "latency_p50_s", "latency_p95_s", "output_tokens",
                "cost_per_success"):
        assert key in summary
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["pattern"] == "direct" and manifest["dataset"] == "gsm8k"
    assert manifest["answer_kind"] == "number" and manifest["knobs"] == {"answer_kind": "number"}
    assert (out / "report.md").read_text().startswith("# agentkit eval: direct on gsm8k")
    assert (out / "report.png").read_bytes()[:4] == b"\x89PNG"


def test_mccot_stores_usage_calls_and_agreement(replay, tmp_path: Path) -> None:
    data = select_dataset("gsm8k", limit=3)
    outcome = evaluate("mccot", data, replay(CASSETTE), tmp_path / "m", knobs=MCCOT)
    assert outcome.complete
    for r in _lines(tmp_path / "m"):
        assert r["calls"] == 1  # k=2 samples are ONE request
        if r["error"] is not None:  # both samples failed validation: recorded, with the tokens spent
            assert r["error_type"] in ("SchemaViolation", "TruncatedOutput") and r["schema_valid"] is False
            continue
        valid = r["extra"]["valid_samples"]
        assert r["extra"]["samples"] == 2 and 1 <= valid <= 2
        assert r["schema_valid"] is (valid == 2)
        votes = r["extra"]["votes"]
        assert sum(votes.values()) <= 2
        if r["prediction"] is not None:
            assert r["extra"]["agreement"] == votes[r["prediction"]] / 2
        assert r["usage"]["cached_tokens"] > 0  # llama.cpp reused the prompt for the 2nd sample


def test_concurrency_limit_is_respected(replay, tmp_path: Path, gsm8k: EvalDataset) -> None:
    backend = Recording(replay(CASSETTE), delay_s=0.05)
    evaluate("direct", gsm8k, backend, tmp_path / "c", concurrency=3)
    assert backend.max_in_flight == 3
    assert len(backend.requests) == 8


def test_resume_skips_finished_and_never_duplicates(replay, tmp_path: Path) -> None:
    out = tmp_path / "r"
    evaluate("direct", select_dataset("gsm8k", limit=3), replay(CASSETTE), out)
    backend = Recording(replay(CASSETTE))
    outcome = evaluate("direct", select_dataset("gsm8k", limit=8), backend, out, resume=True)
    assert (outcome.skipped, outcome.finished) == (3, 5)
    assert len(backend.requests) == 5  # the three finished examples were not asked again
    ids = _ids(out)
    assert len(ids) == len(set(ids)) == 8
    assert outcome.summary.n == 8


def test_a_resumed_run_keeps_its_first_start_and_lists_each_resume(replay, tmp_path: Path, monkeypatch) -> None:
    from agentkit.eval import runner

    out, clock = tmp_path / "r", iter(["2026-11-01T10:00:00+00:00", "2026-11-02T10:00:00+00:00",
                                       "2026-11-03T10:00:00+00:00"])
    monkeypatch.setattr(runner, "_now", lambda: next(clock))
    evaluate("direct", select_dataset("gsm8k", limit=2), replay(CASSETTE), out)
    evaluate("direct", select_dataset("gsm8k", limit=3), replay(CASSETTE), out, resume=True)
    evaluate("direct", select_dataset("gsm8k", limit=3), replay(CASSETTE), out, resume=True)  # nothing left
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["started_at"] == "2026-11-01T10:00:00+00:00"
    assert manifest["resumed_at"] == ["2026-11-02T10:00:00+00:00", "2026-11-03T10:00:00+00:00"]


def test_existing_results_need_resume(replay, tmp_path: Path, gsm8k: EvalDataset) -> None:
    out = tmp_path / "x"
    evaluate("direct", select_dataset("gsm8k", limit=1), replay(CASSETTE), out)
    with pytest.raises(ConfigError, match="already holds results.*--resume"):
        evaluate("direct", gsm8k, replay(CASSETTE), out)


@pytest.mark.parametrize(
    ("pattern", "dataset", "knobs", "expect"),
    [
        ("cot", "gsm8k", None, "pattern 'direct' \\(now 'cot'\\)"),
        ("direct", "math500", None, "dataset 'gsm8k' \\(now 'math500'\\)"),
        ("direct", "gsm8k", {"max_tokens": 64}, "knobs"),
    ],
)
def test_resume_refuses_a_different_run(replay, tmp_path: Path, pattern, dataset, knobs, expect) -> None:
    out = tmp_path / "d"
    evaluate("direct", select_dataset("gsm8k", limit=1), replay(CASSETTE), out)
    with pytest.raises(ConfigError, match=f"holds a different run: .*{expect}"):
        evaluate(pattern, select_dataset(dataset, limit=1), replay(CASSETTE), out, knobs=knobs, resume=True)
    assert len(_ids(out)) == 1  # nothing was appended


def test_resume_refuses_results_without_manifest(replay, tmp_path: Path) -> None:
    out = tmp_path / "m"
    evaluate("direct", select_dataset("gsm8k", limit=1), replay(CASSETTE), out)
    (out / "run.json").unlink()
    with pytest.raises(ConfigError, match="no run.json"):
        evaluate("direct", select_dataset("gsm8k", limit=2), replay(CASSETTE), out, resume=True)


def test_partial_last_line_is_dropped_and_its_example_redone(replay, tmp_path: Path) -> None:
    out = tmp_path / "p"
    evaluate("direct", select_dataset("gsm8k", limit=3), replay(CASSETTE), out)
    whole = (out / "results.jsonl").read_bytes()
    lines = whole.splitlines(keepends=True)
    victim = json.loads(lines[-1])["id"]
    (out / "results.jsonl").write_bytes(b"".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])  # killed mid-write
    backend = Recording(replay(CASSETTE))
    outcome = evaluate("direct", select_dataset("gsm8k", limit=3), backend, out, resume=True)
    assert outcome.finished == 1 and len(backend.requests) == 1
    assert _ids(out)[-1] == victim and sorted(_ids(out)) == sorted(json.loads(x)["id"] for x in lines)
    read_results(out / "results.jsonl")  # every line parses again


def test_whole_last_line_missing_only_its_newline_is_kept(replay, tmp_path: Path) -> None:
    out = tmp_path / "n"
    evaluate("direct", select_dataset("gsm8k", limit=2), replay(CASSETTE), out)
    path = out / "results.jsonl"
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    backend = Recording(replay(CASSETTE))
    outcome = evaluate("direct", select_dataset("gsm8k", limit=3), backend, out, resume=True)
    assert (outcome.skipped, outcome.finished) == (2, 1) and len(backend.requests) == 1
    assert len(_ids(out)) == 3 == len(set(_ids(out)))


def test_unavailable_backend_stops_the_run_and_keeps_what_finished(replay, tmp_path: Path, gsm8k) -> None:
    out = tmp_path / "dead"
    backend = DiesAfter(replay(CASSETTE), ok=3, error=BackendUnavailable)
    outcome = evaluate("direct", gsm8k, backend, out)
    assert outcome.stopped is not None and "backend unavailable" in outcome.stopped
    assert outcome.finished == 3 and backend.refused == 1  # stopped at the first refusal, started nothing more
    finished = _ids(out)
    assert len(finished) == 3
    assert sorted(outcome.lost) == sorted({e.id for e in gsm8k.examples} - set(finished))
    assert json.loads((out / "summary.json").read_text())["n"] == 3
    # the lost examples were not marked finished: a resume on a live backend does exactly those
    again = Recording(replay(CASSETTE))
    resumed = evaluate("direct", gsm8k, again, out, resume=True)
    assert resumed.complete and resumed.finished == 5 and len(again.requests) == 5
    assert len(_ids(out)) == 8 == len(set(_ids(out)))


def test_consecutive_transient_failures_stop_the_run(replay, tmp_path: Path) -> None:
    out = tmp_path / "flaky"
    data = select_dataset("gsm8k", limit=16)
    backend = DiesAfter(replay(CASSETTE), ok=2, error=TransientBackendError)
    outcome = evaluate("direct", data, backend, out, concurrency=3, max_consecutive_failures=3)
    assert outcome.stopped is not None and "3 examples in a row" in outcome.stopped
    assert outcome.finished == 2 and len(_ids(out)) == 2
    assert len(outcome.lost) == 14
    # each failed example had the agent's 3 attempts; the run stopped long before trying all 14
    # (at most the 3 that tripped the stop plus the ones already in flight)
    assert backend.refused % 3 == 0 and backend.refused <= 6 * 3


@pytest.mark.parametrize("error", [None, GenerationTimeout("simulated: no answer within timeout_s")],
                         ids=["transient", "generation-timeout"])
def test_isolated_transient_failure_is_lost_not_recorded(replay, tmp_path: Path, gsm8k, error) -> None:
    """A timeout says nothing of the answer either: not a wrong result but an example to run again."""
    victim = gsm8k.examples[1]
    backend = FailsOn(replay(CASSETTE), victim.fields["question"][:40], error)
    outcome = evaluate("direct", gsm8k, backend, tmp_path / "one")
    assert outcome.stopped is None and outcome.lost == [victim.id]
    assert victim.id not in _ids(tmp_path / "one") and len(_ids(tmp_path / "one")) == 7


def test_schema_violation_is_a_recorded_result(replay, tmp_path: Path) -> None:
    # max_tokens=4 cuts the real model's JSON short: a TruncatedOutput (a SchemaViolation) per example
    data = select_dataset("gsm8k", limit=2)
    outcome = evaluate("direct", data, replay(CASSETTE), tmp_path / "s", knobs={"max_tokens": 4})
    assert outcome.complete
    for r in _lines(tmp_path / "s"):
        assert r["error_type"] == "TruncatedOutput" and r["correct"] is False and r["schema_valid"] is False
        assert "in node 'answer_directly'" in r["error"]
        assert r["calls"] == 1 and r["usage"]["output_tokens"] == 4  # the tokens were spent all the same
    summary = outcome.summary
    assert summary.errors == 2 and summary.errors_by_type == {"TruncatedOutput": 2} and summary.accuracy == 0.0


def test_a_recorded_error_is_one_warning_line_per_type(replay, tmp_path: Path, caplog) -> None:
    data = select_dataset("gsm8k", limit=2)
    with caplog.at_level("WARNING", logger="agentkit.eval.runner"):
        evaluate("direct", data, replay(CASSETTE), tmp_path / "w", knobs={"max_tokens": 4})
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1  # two TruncatedOutput examples, one line
    assert "failed with TruncatedOutput: " in warnings[0].getMessage() and "max_tokens" in warnings[0].getMessage()
    assert warnings[0].exc_info is None  # an expected model failure: no traceback on the user's terminal


def test_input_error_is_a_recorded_result_and_the_run_goes_on(replay, tmp_path: Path) -> None:
    rows = [{"id": e.id, "question": e.fields["question"], "label": e.label}
            for e in load_dataset("gsm8k", limit=2)]
    rows.insert(1, {"id": "no-question", "prompt": "What is 2 + 2?", "label": "4"})
    path = tmp_path / "custom.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    data = select_dataset(path, answer_kind="number")
    assert data.name == str(path.resolve()) and data.sha256
    outcome = evaluate("direct", data, replay(CASSETTE), tmp_path / "i")
    by_id = {r["id"]: r for r in _lines(tmp_path / "i")}
    assert by_id["no-question"]["error_type"] == "InputError" and by_id["no-question"]["calls"] == 0
    assert "no 'question' text" in by_id["no-question"]["error"]
    assert all(by_id[e]["error"] is None for e in ("gsm8k-test-0000", "gsm8k-test-0001"))
    assert outcome.summary.dataset == "custom.jsonl" and outcome.summary.errors == 1


def test_config_error_is_fatal_and_nothing_is_recorded_for_it(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    data = select_dataset("gsm8k", limit=2)
    with pytest.raises(CassetteMiss):  # a request the cassette never saw: every example would fail alike
        evaluate("direct", data, ReplayBackend(empty), tmp_path / "f")
    assert (tmp_path / "f" / "results.jsonl").read_text() == ""


def test_retry_errors_reruns_them_and_the_last_result_wins(replay, tmp_path: Path) -> None:
    out = tmp_path / "re"
    data = select_dataset("gsm8k", limit=3)
    victim = data.examples[0]
    evaluate("direct", data, replay(CASSETTE), out)
    # forge an error result for one example, as a crashed verifier would have left it
    lines = _lines(out)
    for r in lines:
        if r["id"] == victim.id:
            r.update(error="simulated verifier crash", error_type="VerifierError", correct=False, prediction=None)
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    assert evaluate("direct", data, replay(CASSETTE), out, resume=True).finished == 0  # errors are finished...
    outcome = evaluate("direct", data, replay(CASSETTE), out, resume=True, retry_errors=True)
    assert outcome.finished == 1  # ...unless asked to retry them
    assert _ids(out).count(victim.id) == 2
    assert outcome.summary.n == 3 and outcome.summary.errors == 0  # counted once, by its last result


def test_bad_knob_is_a_config_error(replay, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="pattern 'direct' has no knob 'k'; knobs: .*max_tokens"):
        evaluate("direct", select_dataset("gsm8k", limit=1), replay(CASSETTE), tmp_path / "k", knobs={"k": 3})


def test_evaluate_inside_a_running_loop_points_to_aevaluate(replay, tmp_path: Path) -> None:
    async def inside() -> None:
        evaluate("direct", select_dataset("gsm8k", limit=1), replay(CASSETTE), tmp_path / "l")

    with pytest.raises(ConfigError, match="await aevaluate"):
        asyncio.run(inside())


async def test_sync_evaluate_inside_a_running_loop_says_to_await_aevaluate(replay, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="await aevaluate"):
        evaluate("direct", select_dataset("gsm8k", limit=1), replay(CASSETTE), tmp_path / "loop")
    assert not (tmp_path / "loop" / "results.jsonl").exists()


def test_run_json_names_the_code_of_the_start_and_of_each_resume(replay, tmp_path: Path, monkeypatch) -> None:
    from agentkit.eval import runner

    versions = iter(["abc1234", "def5678+dirty"])
    monkeypatch.setattr(runner, "code_version", lambda: next(versions))
    out = tmp_path / "r"
    evaluate("direct", select_dataset("gsm8k", limit=1), replay(CASSETTE), out)
    evaluate("direct", select_dataset("gsm8k", limit=2), replay(CASSETTE), out, resume=True)
    assert json.loads((out / "run.json").read_text())["code"] == ["abc1234", "def5678+dirty"]


def test_the_code_version_is_this_checkouts_commit() -> None:
    import re
    import subprocess

    from agentkit.eval._code_version import code_version

    head = subprocess.run(["git", "rev-parse", "--short=7", "HEAD"], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2]).stdout.strip()
    assert re.fullmatch(rf"{head}(\+dirty)?", code_version())
