"""The cascade asks before escalating (``approve_escalation``), on replayed real SmolLM2 generations
(tests/cassettes/cascade_sheep.jsonl): what it asks (reason, estimated cost), approve and reject
resumed in NEW processes through ``agentkit resume``, exit 3 without a terminal, y/n on one, and
``agentkit eval``'s refusal or unattended policy."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentkit import persistence
from agentkit.cli import app
from agentkit.errors import ConfigError
from agentkit.eval import Prices
from agentkit.graph import Paused
from agentkit.graphs import cascade, mccot
from agentkit.graphs.cascade import Tier
from tests.helpers import Recording
from tests.unit import _approval_worker as worker

QUESTION = worker.QUESTION
PRICES = Prices(per_model={"big-model": (2.0, 4.0)})


def _tiers(replay):
    small, large = Recording(replay("cascade_sheep")), Recording(replay("cascade_sheep"))
    build = lambda b, k: mccot.build(b, k=k, answer_kind="number", seed=5, max_tokens=200)
    return [Tier(name="small", task=build(small, 3)), Tier(name="large", task=build(large, 5), model="big-model")], \
        small, large


def _cascade(tiers, db: Path | None, policy=True):
    graph = cascade.build(tiers=tiers, threshold=1.01, prices=PRICES, approve_escalation=policy)  # always escalates
    return graph.compile(checkpointer=persistence.sqlite(db) if db else None)


def test_the_cascade_asks_with_the_reason_and_an_estimate_then_each_decision(replay, tmp_path: Path) -> None:
    tiers, small, large = _tiers(replay)
    paused = _cascade(tiers, tmp_path / "r.db").invoke({"question": QUESTION}, thread_id="yes")
    assert isinstance(paused, Paused) and paused.node == "approve_large" and len(small.requests) == 1
    facts = paused.details
    assert facts["reason"] == "low_confidence" and facts["from_tier"] == "small" and facts["to_tier"] == "large"
    assert "estimate" in facts["estimated_cost_is"] and "an estimate" in paused.question
    assert large.requests == []  # asked before the upper tier ran
    # the small tier's own tokens, priced at big-model's (2.0 in, 4.0 out per 1k; cached in at a tenth)
    out = asyncio.run(_cascade(tiers, tmp_path / "r.db").aget_state("yes")).attempts[0].usage
    expected = ((out.input_tokens + 0.1 * out.cached_tokens) * 2.0 + out.output_tokens * 4.0) / 1000
    assert facts["estimated_cost"] == pytest.approx(expected) and expected > 0

    approved = _cascade(tiers, tmp_path / "r.db").resume("yes", "approve")
    assert len(large.requests) == 1 and approved.answered_by == "large" and approved.escalation == "approved"
    assert [a.tier for a in approved.attempts] == ["small", "large"]

    tiers, small, large = _tiers(replay)
    _cascade(tiers, tmp_path / "r.db").invoke({"question": QUESTION}, thread_id="no")
    rejected = _cascade(tiers, tmp_path / "r.db").resume("no", "reject")
    assert large.requests == [] and rejected.escalation == "rejected"
    assert rejected.answered_by == "small" and rejected.answer == rejected.attempts[0].answer is not None
    assert rejected.confident is False  # the small tier's answer still failed its checks
    assert cascade.extras(rejected)["tiers"][0]["escalated"] is False  # it stayed: accounting sees no escalation


def test_without_approval_the_result_says_none_or_automatic_and_policies_need_no_store(replay) -> None:
    tiers, _, large = _tiers(replay)
    out = cascade.build(tiers=tiers, threshold=1.01).compile().invoke({"question": QUESTION})
    assert out.escalation == "automatic" and len(large.requests) == 1
    tiers, _, large = _tiers(replay)
    assert cascade.build(tiers=tiers, threshold=0.0).compile().invoke({"question": QUESTION}).escalation == "none"
    tiers, _, large = _tiers(replay)
    assert _cascade(tiers, None, "auto-reject").invoke({"question": QUESTION}).escalation == "rejected"
    assert large.requests == []
    assert _cascade(tiers, None, "auto-approve").invoke({"question": QUESTION}).escalation == "approved"
    assert len(large.requests) == 1
    with pytest.raises(ConfigError, match="compile with checkpointer"):
        _cascade(tiers, None, True)
    with pytest.raises(ConfigError, match="approve_escalation"):
        cascade.build(tiers=tiers, approve_escalation="sometimes")


def _calls(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@pytest.mark.parametrize(("decision", "answered_by", "large_calls"), [("approve", "large", 1), ("reject", "small", 0)])
def test_cli_pauses_with_exit_3_and_agentkit_resume_in_a_new_process_decides(
        tmp_path: Path, decision: str, answered_by: str, large_calls: int) -> None:
    outcome = {"approve": "approved", "reject": "rejected"}[decision]
    db, calls = str(tmp_path / "runs.db"), tmp_path / "calls.log"
    first = worker.agentkit(*worker.RUN, "--approve-escalation", "--checkpoint", db, "--thread", "t", calls=calls)
    assert first.returncode == 3, first.stderr
    command = f"agentkit resume --thread t --checkpoint {db} --decision approve|reject"
    assert command in first.stderr and "thread t waits for a decision" in first.stderr
    shown = json.loads(first.stdout)
    assert shown["kind"] == "paused" and shown["thread_id"] == "t" and shown["resume"] == command
    assert shown["details"]["reason"] == "low_confidence" and _calls(calls) == ["small n=3"]
    listed = asyncio.run(persistence.list_threads(persistence.sqlite(db)))
    assert [(i.thread_id, i.status) for i in listed] == [("t", "paused")]

    again = worker.agentkit("resume", "--thread", "t", "--checkpoint", db, "--decision", decision, calls=calls)
    assert again.returncode == 0, again.stderr
    out = json.loads(again.stdout)
    assert out["answered_by"] == answered_by and out["escalation"] == outcome
    assert _calls(calls) == ["small n=3"] + ["large n=9"] * large_calls  # the small tier was not run again
    if decision == "reject":
        assert out["answer"] == out["attempts"][0]["answer"] and len(out["attempts"]) == 1
        return
    done = worker.agentkit("resume", "--thread", "t", "--checkpoint", db, "--decision", decision, calls=calls)
    assert done.returncode == 2 and "is finished, not paused" in done.stderr


@pytest.fixture
def replay_kinds():
    from agentkit.backends import register_backend, unregister_backend
    from agentkit.backends.replay import ReplayBackend

    made: dict[str, Recording] = {}
    for name in ("small", "large"):
        register_backend(f"replay-{name}", lambda model=None, base_url=None, name=name: made.setdefault(
            name, Recording(ReplayBackend(worker.CASSETTE))), help="test")
    yield made
    for name in ("small", "large"):
        unregister_backend(f"replay-{name}")


def test_on_a_terminal_the_cli_asks_y_n_and_needs_no_store(replay_kinds, monkeypatch) -> None:
    monkeypatch.setattr("agentkit.cli._approval.interactive", lambda: True)
    r = CliRunner().invoke(app, [*worker.RUN, "--approve-escalation"], input="n\n")
    assert r.exit_code == 0, r.output
    assert "escalate from tier 'small' to 'large'?" in r.stderr and "approve?" in r.stderr
    out = json.loads(r.stdout.splitlines()[-1])  # CliRunner echoes the typed answer to stdout first
    assert out["escalation"] == "rejected" and out["answered_by"] == "small"
    assert replay_kinds["large"].requests == [] and len(replay_kinds["small"].requests) == 1


def test_without_a_terminal_or_a_store_approval_is_refused_up_front(replay_kinds) -> None:
    r = CliRunner().invoke(app, [*worker.RUN, "--approve-escalation"])
    assert r.exit_code == 2 and "needs --checkpoint and --thread" in r.stderr and replay_kinds == {}
    r = CliRunner().invoke(app, ["run", "mccot", "--question", "q", "--approve-escalation"])
    assert r.exit_code == 2 and "is for the cascade pattern" in r.stderr


def test_eval_refuses_to_pause_and_records_an_unattended_policy(monkeypatch, tmp_path: Path) -> None:
    from tests.unit.fake_answers import FakeAnswers
    from tests.unit.test_cli_eval import _doubling, _patch_backend, _toy_numbers, cli

    _patch_backend(monkeypatch, lambda: FakeAnswers(_doubling))
    data = _toy_numbers(tmp_path, 4)
    refused = cli("eval", "cascade", "--dataset", data, "--answer-kind", "number", "--samples", "2",
                  "-o", "approve_escalation=true", "--out", tmp_path / "x", "--no-progress")
    assert refused.exit_code == 2 and refused.stderr.count("\n") == 1
    assert "cannot pause for approval" in refused.stderr and "auto-approve" in refused.stderr
    out = tmp_path / "auto"
    r = cli("eval", "cascade", "--dataset", data, "--answer-kind", "number", "--samples", "2",
            "-o", "approve_escalation=auto-reject", "--out", out, "--no-progress")
    assert r.exit_code == 0, r.output
    assert json.loads((out / "run.json").read_text())["knobs"]["approve_escalation"] == "auto-reject"
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    by_id = {row["id"]: row for row in rows}
    text = json.dumps(by_id)
    assert text.count('"escalation": "rejected"') == 2 and text.count('"escalation": "none"') == 2
