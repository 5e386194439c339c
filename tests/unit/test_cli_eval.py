"""`agentkit eval`: files written, baselines side by side, --compare, --resume, and caller mistakes
that exit 2 with one line before any model is loaded. The backend is the replayed real SmolLM2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentkit.errors import BackendUnavailable, ConfigError
from agentkit.eval.report import load_summary
from tests.helpers import Recording
from tests.unit.test_eval_runner import CASSETTE, DiesAfter

runner = CliRunner()

MCCOT_ARGS = ["--samples", "2", "--seed", "7", "-o", "max_tokens=160"]  # as the cassette was recorded


def cli(*args: str):
    from agentkit.cli import app

    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def backend(replay, monkeypatch: pytest.MonkeyPatch):
    """make_backend -> the replay cassette; records what the CLI asked for."""
    made: list[Recording] = []

    def make(kind: str = "llamacpp", *, model=None, base_url=None):
        assert kind == "llamacpp" and model is None and base_url is None
        made.append(Recording(replay(CASSETTE)))
        return made[-1]

    monkeypatch.setattr("agentkit.backends.make_backend", make)
    return made


@pytest.fixture
def no_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """Caller mistakes must be reported before a model is loaded."""

    def make(*args, **kwargs):  # a ConfigError exits 2 like the mistakes do, but with this text
        raise ConfigError("test: a backend was requested")

    monkeypatch.setattr("agentkit.backends.make_backend", make)


def _one_line_error(result, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    return result.stderr


def test_eval_with_baselines_writes_reports_side_by_side(backend, tmp_path: Path) -> None:
    out = tmp_path / "run"
    r = cli("eval", "mccot", "--dataset", "gsm8k", "--limit", "2", *MCCOT_ARGS, "--baselines",
            "--out", out, "--no-progress")
    assert r.exit_code == 0, r.output
    assert len(backend) == 1 and len(backend[0].requests) == 6  # 2 examples x (mccot + direct + cot), one each
    for run_dir, pattern in ((out, "mccot"), (out / "baseline-direct", "direct"), (out / "baseline-cot", "cot")):
        for name in ("results.jsonl", "summary.json", "report.md", "report.png", "run.json"):
            assert (run_dir / name).is_file(), run_dir / name
        summary = load_summary(run_dir)
        assert (summary.pattern, summary.dataset, summary.n) == (pattern, "gsm8k", 2)
        assert len((run_dir / "results.jsonl").read_text().splitlines()) == 2
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["knobs"] == {"answer_kind": "number", "k": 2, "seed": 7, "max_tokens": 160}
    assert json.loads((out / "baseline-cot" / "run.json").read_text())["knobs"] == {"answer_kind": "number", "seed": 7}
    md = (out / "report.md").read_text()
    assert "## Pattern vs baselines" in md
    for name in ("mccot", "direct", "cot"):
        assert any(line.startswith(f"| {name} |") for line in md.splitlines()), name
    assert "| metric | mccot (run) | direct (baseline-direct) | cot (baseline-cot) |" in r.stdout

    cmp = cli("eval", "--compare", out, out / "baseline-direct")
    assert cmp.exit_code == 0, cmp.output
    assert cmp.stdout.startswith("| metric | mccot (run) | direct (baseline-direct) |")
    assert "| examples (n) | 2 | 2 |" in cmp.stdout

    again = cli("eval", "mccot", "--dataset", "gsm8k", "--limit", "2", *MCCOT_ARGS, "--baselines",
                "--out", out, "--resume", "--no-progress")
    assert again.exit_code == 0, again.output
    assert len(backend[1].requests) == 0  # everything was finished: nothing asked again
    assert len((out / "results.jsonl").read_text().splitlines()) == 2


def test_dead_backend_exits_1_keeping_finished_results(replay, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr("agentkit.backends.make_backend",
                        lambda *a, **k: DiesAfter(replay(CASSETTE), ok=1, error=BackendUnavailable))
    out = tmp_path / "dead"
    r = cli("eval", "direct", "--dataset", "gsm8k", "--limit", "4", "--out", out, "--no-progress")
    assert r.exit_code == 1
    assert "3 of 4 examples of direct not finished (backend unavailable" in r.stderr
    assert "rerun with --resume" in r.stderr
    assert len((out / "results.jsonl").read_text().splitlines()) == 1
    assert load_summary(out).n == 1


def test_resume_into_another_patterns_run_is_refused(backend, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "run"
    assert cli("eval", "direct", "--dataset", "gsm8k", "--limit", "1", "--out", out, "--no-progress").exit_code == 0
    monkeypatch.setattr("agentkit.backends.make_backend", lambda *a, **k: pytest.fail("backend created"))
    err = _one_line_error(cli("eval", "cot", "--dataset", "gsm8k", "--limit", "1", "--out", out, "--resume"))
    assert "holds a different run: pattern 'direct' (now 'cot')" in err
    err = _one_line_error(cli("eval", "direct", "--dataset", "prontoqa", "--limit", "1", "--out", out, "--resume"))
    assert "dataset 'gsm8k' (now 'prontoqa')" in err
    err = _one_line_error(cli("eval", "direct", "--dataset", "gsm8k", "--out", out))
    assert "already holds results" in err and "--resume" in err


def test_unknown_dataset(no_backend, tmp_path: Path) -> None:
    err = _one_line_error(cli("eval", "mccot", "--dataset", "gsm9k", "--out", tmp_path / "o"))
    assert "unknown dataset 'gsm9k'" in err


def test_malformed_dataset_row_names_file_and_line(no_backend, tmp_path: Path) -> None:
    data = tmp_path / "mine.jsonl"
    data.write_text('{"id": 1, "question": "2+2?", "label": "4"}\n{"id": 2, "question": "3+3?", "label": \n')
    err = _one_line_error(cli("eval", "mccot", "--dataset", data, "--out", tmp_path / "o"))
    assert f"{data}:2: not valid JSON" in err


def test_missing_label_field_points_at_field_map(no_backend, tmp_path: Path) -> None:
    data = tmp_path / "mine.jsonl"
    data.write_text('{"id": 1, "question": "2+2?", "gold": "4"}\n')
    err = _one_line_error(cli("eval", "direct", "--dataset", data, "--out", tmp_path / "o"))
    assert f"{data}:1: field 'label': missing" in err
    ok = cli("eval", "direct", "--dataset", data, "--field", "label=gold", "--out", tmp_path / "o")
    assert "test: a backend was requested" in _one_line_error(ok)  # mapped: every check passed


def test_out_not_writable(no_backend, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    err = _one_line_error(cli("eval", "mccot", "--dataset", "gsm8k", "--out", blocker / "run"))
    assert "is not writable" in err and "--out" in err


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["eval"], "missing PATTERN"),
        (["eval", "mccot", "direct", "--dataset", "gsm8k", "--out", "o"], "give one PATTERN"),
        (["eval", "nope", "--dataset", "gsm8k", "--out", "o"], "unknown pattern 'nope'"),
        (["eval", "mccot", "--out", "o"], "missing --dataset"),
        (["eval", "direct", "--dataset", "gsm8k", "--out", "o", "--samples", "3"], "has no samples knob"),
        (["eval", "mccot", "--dataset", "gsm8k", "--out", "o", "-o", "kk=3"], "'kk' is not a knob"),
        (["eval", "mccot", "--dataset", "gsm8k", "--out", "o", "--retry-errors"], "pass --resume too"),
        (["eval", "mccot", "--dataset", "gsm8k", "--out", "o", "--answer-kind", "roman"], "unknown answer kind"),
        (["eval", "mccot", "--dataset", "x.jsonl", "--field", "label", "--out", "o"], "not OURS=THEIRS"),
        (["eval", "--compare"], "--compare needs run directories"),
        (["eval", "--compare", "no/such/dir"], "no summary.json"),
    ],
)
def test_caller_mistakes_exit_2_with_one_line(no_backend, tmp_path: Path, monkeypatch, args, expect) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.jsonl").write_text('{"question": "q", "label": "a"}\n')
    assert expect in _one_line_error(cli(*args))


def test_bad_price_table(no_backend, tmp_path: Path) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text('{"per_model": {"135m": "cheap"}}')
    err = _one_line_error(cli("eval", "direct", "--dataset", "gsm8k", "--out", tmp_path / "o", "--prices", prices))
    assert "--prices" in err and "per_model.135m" in err
