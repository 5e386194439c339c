"""Evaluation on a real local Ray (tests/ray/conftest.py): the same results as without Ray, resume in
either direction, a worker SIGKILLed mid-eval costs no example and duplicates none, Ray listens on
127.0.0.1 only, and the CLI's --ray / --ray-address end to end. The model is the replayed real
SmolLM2 (tests/cassettes/eval_gsm8k.jsonl), or fake OpenAI servers for the CLI."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from agentkit.backends.replay import ReplayBackend
from agentkit.eval.runner import BackendSpec, EvalOutcome, RayOptions, evaluate, select_dataset
from tests.conftest import CASSETTES
from tests.ray._backends import SlowReplay, pool_of
from tests.unit._eval_pool_fakes import SchemaFake
from tests.unit.fake_openai_server import Reply
from tests.unit.test_eval_runner import CASSETTE, MCCOT

ROOT = Path(__file__).resolve().parents[2]
CASSETTE_PATH = CASSETTES / f"{CASSETTE}.jsonl"
N = 16
COMPARED = ("prediction", "label", "correct", "usage", "error", "error_type", "schema_valid", "calls", "extra",
            "requests_by_server", "cluster")
TIMING = {"latency_p50_s", "latency_p95_s"}
ON_RAY = RayOptions(actors=2)


def _spec(delay_s: float = 0.0, pid_dir: Path | None = None) -> BackendSpec:
    return BackendSpec(factory=functools.partial(SlowReplay, CASSETTE_PATH, delay_s, pid_dir))


def _rows(out: Path) -> list[dict[str, Any]]:
    path = out / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _by_id(out: Path) -> dict[str, dict[str, Any]]:
    rows = _rows(out)
    assert sorted(Counter(r["id"] for r in rows).values()) == [1] * len(rows), "an id written twice"
    return {r["id"]: {k: r.get(k) for k in COMPARED} for r in rows}


def _summary(out: Path) -> dict[str, Any]:
    return {k: v for k, v in json.loads((out / "summary.json").read_text()).items() if k not in TIMING}


@pytest.mark.parametrize(("pattern", "knobs", "limit"), [("direct", None, N), ("mccot", MCCOT, 3)])
def test_an_eval_on_ray_equals_the_same_eval_without(ray_cluster: Any, tmp_path: Path, pattern: str,
                                                     knobs: dict | None, limit: int) -> None:
    data = select_dataset("gsm8k", limit=limit)
    local = evaluate(pattern, data, ReplayBackend(CASSETTE_PATH), tmp_path / "local", knobs=knobs, concurrency=2)
    on_ray = evaluate(pattern, data, _spec(), tmp_path / "ray", knobs=knobs, concurrency=4, ray=ON_RAY)
    assert on_ray.complete and on_ray.finished == limit and local.finished == limit
    assert _by_id(tmp_path / "ray") == _by_id(tmp_path / "local")
    assert _summary(tmp_path / "ray") == _summary(tmp_path / "local")
    manifests = [json.loads((tmp_path / d / "run.json").read_text()) for d in ("local", "ray")]
    assert manifests[1].pop("ray") == {"address": "local", "actors": 2, "cpus_per_actor": 1.0, "n_threads": None,
                                          "max_in_flight": None}
    assert [{k: v for k, v in m.items() if k not in ("started_at", "ray")} for m in manifests] == [
        {k: v for k, v in manifests[0].items() if k not in ("started_at", "ray")}] * 2


def test_a_run_resumes_across_ray_and_local_in_both_directions(ray_cluster: Any, tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = evaluate("direct", select_dataset("gsm8k", limit=5), _spec(), out, ray=ON_RAY, concurrency=2)
    second = evaluate("direct", select_dataset("gsm8k", limit=10), ReplayBackend(CASSETTE_PATH), out, resume=True)
    third = evaluate("direct", select_dataset("gsm8k", limit=N), _spec(), out, ray=ON_RAY, concurrency=2, resume=True)
    assert (first.finished, second.skipped, second.finished, third.skipped, third.finished) == (5, 5, 5, 10, 6)
    assert third.complete and third.summary.n == N
    reference = tmp_path / "reference"
    evaluate("direct", select_dataset("gsm8k", limit=N), ReplayBackend(CASSETTE_PATH), reference)
    assert _by_id(out) == _by_id(reference)
    assert _summary(out) == _summary(reference)


def test_a_worker_killed_mid_eval_loses_no_example_and_writes_none_twice(ray_cluster: Any, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    out = tmp_path / "run"
    done: dict[str, EvalOutcome] = {}

    def run() -> None:
        done["outcome"] = evaluate("direct", select_dataset("gsm8k", limit=N), _spec(0.25, pids), out,
                                   ray=ON_RAY, concurrency=4)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 120
    while len(_rows(out)) < 3 and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    workers = sorted(int(p.name) for p in pids.iterdir())
    assert len(workers) == 2
    written_at_kill = len(_rows(out))
    os.kill(workers[0], signal.SIGKILL)  # two examples were running in it
    thread.join(timeout=180)
    assert not thread.is_alive()
    assert 3 <= written_at_kill < N - 2
    outcome = done["outcome"]
    assert outcome.complete and outcome.stopped is None and outcome.finished == N
    rows = _by_id(out)  # asserts every id once
    assert len(rows) == N and all(r["error"] is None for r in rows.values())
    reference = tmp_path / "reference"
    evaluate("direct", select_dataset("gsm8k", limit=N), ReplayBackend(CASSETTE_PATH), reference)
    assert rows == _by_id(reference)
    assert len(list(pids.iterdir())) == 3  # the dead worker was replaced by a new process


def test_ray_listens_on_loopback_only(ray_cluster: Any) -> None:
    lines = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout.splitlines()
    ours = [line for line in lines if any(f'"{name}"' in line for name in ("raylet", "gcs_server"))]
    assert ours, lines
    bound = {line.split()[3].rsplit(":", 1)[0] for line in ours}
    assert bound <= {"127.0.0.1", "[::ffff:127.0.0.1]"}, bound


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agentkit", "eval", *args, "--no-progress"], capture_output=True,
                          text=True, timeout=240, cwd=ROOT)


def test_cli_eval_with_ray_over_a_pool_end_to_end(ray_cluster: Any, ray_address: str, tmp_path: Path) -> None:
    """--ray starts (and stops) its own local Ray; --ray-address joins the session's cluster."""
    with SchemaFake(default=Reply(delay_s=0.02)) as a, SchemaFake(default=Reply(delay_s=0.02)) as b:
        pool = ["--backend", "vllm", "--base-url", a.url, "--base-url", b.url, "--concurrency", "4"]
        local = _cli("direct", "--dataset", "gsm8k", "--limit", "6", *pool, "--ray", "--ray-actors", "2",
                     "--out", str(tmp_path / "local"))
        assert local.returncode == 0, local.stderr[-3000:]
        joined = _cli("direct", "--dataset", "gsm8k", "--limit", "8", *pool, "--ray-address", ray_address,
                      "--out", str(tmp_path / "local"), "--resume")
        assert joined.returncode == 0, joined.stderr[-3000:]
        posts = len(a.posts()) + len(b.posts())
    rows = _by_id(tmp_path / "local")
    assert len(rows) == 8 and all(r["error"] is None for r in rows.values())
    summary = json.loads((tmp_path / "local" / "summary.json").read_text())
    assert summary["n"] == 8 and sum(summary["requests_by_server"].values()) == posts == 8
    manifest = json.loads((tmp_path / "local" / "run.json").read_text())
    assert manifest["ray"]["address"] == ray_address and manifest["provider"] == "vllm"
    assert "6 run now" in local.stderr and "2 run now, 6 resumed" in joined.stderr


def _eval_workers() -> set[int]:
    """Live Ray actor processes of evaluations (their title is ray::EvalWorker...)."""
    pids = set()
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes().startswith(b"ray::EvalWorker"):
                pids.add(int(entry.name))
        except OSError:
            continue
    return pids


def _ctrl_c_as_in_a_terminal() -> None:
    """A test session started in the background by a non-interactive shell (`make test &`) inherits
    SIGINT ignored, and so would the CLI; a user's Ctrl-C reaches a CLI whose SIGINT is not ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_the_actors_and_keeps_finished_results(ray_address: str, tmp_path: Path) -> None:
    """On the session's cluster (joined, so left running): the run's own actors must go."""
    out = tmp_path / "run"
    with SchemaFake(default=Reply(delay_s=0.4)) as fake:
        proc = subprocess.Popen(
            [sys.executable, "-m", "agentkit", "eval", "direct", "--dataset", "gsm8k", "--limit", "40", "--backend",
             "vllm", "--base-url", fake.url, "--ray-address", ray_address, "--ray-actors", "2", "--out", str(out),
             "--no-progress"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, preexec_fn=_ctrl_c_as_in_a_terminal)
        deadline = time.monotonic() + 120
        while len(_rows(out)) < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        workers = _eval_workers()
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr[-3000:]
    assert "finished examples are kept" in stderr
    rows = _by_id(out)  # whole lines, each id once
    assert 3 <= len(rows) < 40
    assert len(workers) == 2
    deadline = time.monotonic() + 20
    while workers & _eval_workers() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not workers & _eval_workers(), "actors left running after Ctrl-C"
    again = _cli("direct", "--dataset", "gsm8k", "--limit", "3", "--backend", "vllm", "--base-url",
                 "http://127.0.0.1:9/v1", "--model", "fake-model", "--out", str(out), "--resume")
    assert again.returncode == 0 and "0 run now, 3 resumed" in again.stderr, again.stderr[-2000:]


def _broken_backend() -> Any:
    from agentkit.errors import ModelNotFound

    raise ModelNotFound("GGUF model file not found: /nowhere.gguf; pass the path of an existing .gguf file")


def test_an_actor_that_cannot_build_its_backend_raises_the_original_error(ray_cluster: Any, tmp_path: Path) -> None:
    from agentkit.errors import ModelNotFound

    with pytest.raises(ModelNotFound, match="/nowhere.gguf"):
        evaluate("direct", select_dataset("gsm8k", limit=2), BackendSpec(factory=_broken_backend), tmp_path / "o",
                 ray=RayOptions(actors=1))
    assert not (tmp_path / "o" / "results.jsonl").exists()


def test_actors_share_each_endpoints_in_flight_limit(ray_cluster: Any, tmp_path: Path) -> None:
    """The limit is the server's capacity: 2 actors with a limit of 2 per endpoint each send 1, so no
    server ever sees more than 2 at once (each actor's full limit would put 4 there)."""
    with SchemaFake(default=Reply(delay_s=0.25)) as a, SchemaFake(default=Reply(delay_s=0.25)) as b:
        spec = BackendSpec(factory=functools.partial(pool_of, [a.url, b.url], 2))
        outcome = evaluate("direct", select_dataset("gsm8k", limit=12), spec, tmp_path / "out", concurrency=8,
                           ray=ON_RAY)
        peaks = [a.max_in_flight, b.max_in_flight]
    assert outcome.complete and outcome.finished == 12
    assert max(peaks) <= 2 and min(peaks) >= 1, peaks
    manifest = json.loads((tmp_path / "out" / "run.json").read_text())
    assert manifest["ray"]["max_in_flight"] == {a.url: 1, b.url: 1}
