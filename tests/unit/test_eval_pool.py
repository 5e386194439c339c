"""An evaluation over a pool of two fake OpenAI servers on 127.0.0.1 (real HTTP, latency-modelled):
requests are counted per endpoint in each result line and in the summary; a server SIGKILLed
mid-eval costs nothing (every example finishes exactly once, without --resume); and every call of
one DaSLaM run reaches a single endpoint."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from agentkit.backends import make_backend
from agentkit.eval.metrics import ExampleResult, Summary, summarize
from agentkit.eval.report import render_markdown
from agentkit.eval.runner import EvalOutcome, evaluate, select_dataset
from tests.unit._eval_pool_fakes import SchemaFake, fill
from tests.unit.fake_openai_server import Reply

ROOT = Path(__file__).resolve().parents[2]


def _lines(out: Path) -> list[dict]:
    path = out / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _server_process(delay_s: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.unit._eval_pool_fakes", "1", str(delay_s)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def test_the_schema_fake_answers_what_the_schema_asks() -> None:
    schema = {"type": "object", "properties": {"subquestions": {"type": "array", "minItems": 2,
                                                                "items": {"type": "string", "minLength": 3}},
                                               "n": {"type": "integer", "minimum": 7}}}
    assert fill(schema) == {"subquestions": ["444", "444"], "n": 7}


def test_a_server_killed_mid_eval_loses_nothing_and_both_endpoints_are_counted(tmp_path: Path) -> None:
    (proc_a, url_a), (proc_b, url_b) = _server_process(0.05), _server_process(0.05)
    out = tmp_path / "run"
    n = 24
    try:
        backend = make_backend("vllm", base_url=[url_a, url_b])
        result: dict[str, EvalOutcome] = {}
        thread = threading.Thread(target=lambda: result.setdefault(
            "outcome", evaluate("direct", select_dataset("gsm8k", limit=n), backend, out, concurrency=4)))
        thread.start()
        deadline = time.monotonic() + 30
        while len(_lines(out)) < 6 and time.monotonic() < deadline:
            time.sleep(0.01)
        written_at_kill = len(_lines(out))
        proc_a.send_signal(signal.SIGKILL)  # mid-eval: requests in flight on it are cut off
        thread.join(timeout=120)
        assert not thread.is_alive()
    finally:
        for proc in (proc_a, proc_b):
            proc.kill()
            proc.wait(timeout=10)
    assert 6 <= written_at_kill < n
    outcome = result["outcome"]
    rows = _lines(out)
    assert outcome.complete and outcome.stopped is None and outcome.summary.n == n
    assert sorted(Counter(r["id"] for r in rows).values()) == [1] * n  # each example exactly once
    assert all(r["error"] is None for r in rows)  # the dead server became no example's error
    summary = outcome.summary
    assert set(summary.requests_by_server or {}) == {url_a, url_b}
    assert all(count > 0 for count in summary.requests_by_server.values())
    assert sum(summary.requests_by_server.values()) == sum(r["calls"] for r in rows)
    late = [r for r in rows[written_at_kill + 4:]]  # started after the kill: only b answers them
    assert late and all(set(r["requests_by_server"]) == {url_b} for r in late)
    stored = json.loads((out / "summary.json").read_text())
    assert stored["requests_by_server"] == summary.requests_by_server
    assert f"{url_a}: {summary.requests_by_server[url_a]}" in (out / "report.md").read_text()


def test_every_call_of_a_daslam_run_lands_on_one_endpoint(tmp_path: Path) -> None:
    with SchemaFake(default=Reply(delay_s=0.02)) as a, SchemaFake(default=Reply(delay_s=0.02)) as b:
        backend = make_backend("vllm", base_url=[a.url, b.url])
        outcome = evaluate("daslam", select_dataset("gsm8k", limit=8), backend, tmp_path / "run", concurrency=4)
        posts = {a.url: len(a.posts()), b.url: len(b.posts())}
    rows = _lines(tmp_path / "run")
    assert outcome.complete and len(rows) == 8
    assert all(r["error"] is None for r in rows), [r["error"] for r in rows]
    for r in rows:  # one run: several sequential calls, all on one server
        assert r["calls"] >= 3
        (server, count), = r["requests_by_server"].items()
        assert count == r["calls"]
    assert {s for r in rows for s in r["requests_by_server"]} == {a.url, b.url}  # runs spread over both
    assert outcome.summary.requests_by_server == posts  # the servers' own counts agree


def test_no_pool_means_no_counts_and_old_lines_still_read() -> None:
    old = ExampleResult.model_validate({"id": "1", "label": "4", "prediction": "4", "correct": True})
    assert old.requests_by_server is None
    assert summarize([old]).requests_by_server is None
    pooled = old.model_copy(update={"requests_by_server": {"http://b/v1": 2, "http://a/v1": 1}})
    summary = summarize([old, pooled, pooled])
    assert summary.requests_by_server == {"http://a/v1": 2, "http://b/v1": 4}  # summed, sorted by URL
    assert "requests by server" in render_markdown(summary)
    assert "requests by server" not in render_markdown(summarize([old]))
    assert Summary.model_validate(json.loads(summary.model_dump_json())).requests_by_server == summary.requests_by_server
