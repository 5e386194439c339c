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
BASELINES_CASSETTE = "cli_baselines_gsm8k"  # eval_gsm8k's requests plus sc's, recorded from the real SmolLM2


def cli(*args: str):
    from agentkit.cli import app

    return runner.invoke(app, [str(a) for a in args])


def _patch_backend(monkeypatch: pytest.MonkeyPatch, new) -> list:
    """make_backend -> ``new()``; returns the backends the CLI asked for, in order."""
    made: list = []

    def make(kind: str = "llamacpp", *, model=None, base_url=None, max_in_flight=None, timeout_s=None):
        assert kind == "llamacpp" and model is None and base_url is None and max_in_flight is None and timeout_s is None
        made.append(new())
        return made[-1]

    monkeypatch.setattr("agentkit.backends.make_backend", make)
    return made


@pytest.fixture
def backend(replay, monkeypatch: pytest.MonkeyPatch):
    """make_backend -> the replay cassette; records what the CLI asked for."""
    return _patch_backend(monkeypatch, lambda: Recording(replay(CASSETTE)))


@pytest.fixture
def baselines_backend(replay, monkeypatch: pytest.MonkeyPatch):
    return _patch_backend(monkeypatch, lambda: Recording(replay(BASELINES_CASSETTE)))


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


def test_eval_with_baselines_writes_reports_side_by_side(baselines_backend, tmp_path: Path) -> None:
    backend = baselines_backend
    out = tmp_path / "run"
    r = cli("eval", "mccot", "--dataset", "gsm8k", "--limit", "2", *MCCOT_ARGS, "--baselines",
            "--out", out, "--no-progress")
    assert r.exit_code == 0, r.output
    # 2 examples x (mccot + direct + cot + sc), one request each; gsm8k has no labels: no majority-label
    assert len(backend) == 1 and len(backend[0].requests) == 8
    assert not (out / "baseline-majority-label").exists()
    runs = ((out, "mccot"), (out / "baseline-direct", "direct"), (out / "baseline-cot", "cot"),
            (out / "baseline-sc", "sc"))
    for run_dir, pattern in runs:
        for name in ("results.jsonl", "summary.json", "report.md", "report.png", "run.json"):
            assert (run_dir / name).is_file(), run_dir / name
        summary = load_summary(run_dir)
        assert (summary.pattern, summary.dataset, summary.n) == (pattern, "gsm8k", 2)
        assert len((run_dir / "results.jsonl").read_text().splitlines()) == 2
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["knobs"] == {"answer_kind": "number", "k": 2, "seed": 7, "max_tokens": 160}
    assert json.loads((out / "baseline-cot" / "run.json").read_text())["knobs"] == {"answer_kind": "number", "seed": 7}
    # sc: K = mccot's samples per example (2), mccot's temperature (0.8), in ONE request of n=2 per example
    sc_knobs = json.loads((out / "baseline-sc" / "run.json").read_text())["knobs"]
    assert sc_knobs == {"answer_kind": "number", "seed": 7, "k": 2, "temperature": 0.8, "budget": {
        "pattern": "mccot", "rule": "ceil(mean samples per example)", "mean_samples": 2.0, "examples": 2}}
    sc_requests = [q for q in backend[0].requests if "reasoning" in q.constraint.value["properties"] and q.n == 2]
    assert len(sc_requests) == 2 and all(q.sampling.temperature == 0.8 for q in sc_requests)
    comparisons = json.loads((out / "comparison.json").read_text())
    assert [(c["a"], c["b"]) for c in comparisons] == [
        ("mccot", "direct"), ("mccot", "cot"), ("mccot", "sc (K=2: ceil of 2 samples/example of mccot)")]
    for c in comparisons:
        assert {"a", "b", "n_paired", "diff", "diff_ci95", "mcnemar_p"} <= set(c) and c["n_paired"] == 2
    md = (out / "report.md").read_text()
    assert "## Pattern vs baselines" in md and "## Paired comparisons" in md
    for name in ("mccot", "direct", "cot", "sc (K=2: ceil of 2 samples/example of mccot)"):
        assert any(line.startswith(f"| {name} |") for line in md.splitlines()), name
    assert ("| metric | mccot (run) | direct (baseline-direct) | cot (baseline-cot) | sc (baseline-sc) |"
            in r.stdout)

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


# -- baselines on labelled sets, cascade tiers, --calibrate-on (a scripted fake: the routing is known) --


@pytest.fixture
def yes_no(tmp_path: Path):
    """A labelled named set with a test split only: majority-label must come from its rows (oracle)."""
    from agentkit.eval import DatasetSpec, register_dataset, unregister_dataset
    from agentkit.vocab import Example

    def parse(rows, src):
        for _, row in rows:
            yield Example(id=row["id"], fields={"question": row["q"]}, label=row["label"])

    path = tmp_path / "yes-no.jsonl"
    path.write_text("".join(json.dumps({"id": f"r{i}", "q": f"Is {i} even?", "label": "yes" if i % 2 == 0 else "no"})
                            + "\n" for i in range(5)))
    register_dataset(DatasetSpec(name="toy-yes-no", splits={"test": str(path)}, parser=parse, answer_kind="label",
                                 labels=frozenset({"yes", "no"}), description="toy"))
    yield "toy-yes-no"
    unregister_dataset("toy-yes-no")


def test_labelled_sets_get_majority_label_marked_oracle(yes_no, monkeypatch, tmp_path: Path) -> None:
    from tests.unit.fake_answers import FakeAnswers

    made = _patch_backend(monkeypatch, lambda: FakeAnswers(["yes", "no", "yes"]))
    out = tmp_path / "run"
    r = cli("eval", "mccot", "--dataset", yes_no, "--samples", "3", "--baselines", "--out", out, "--no-progress")
    assert r.exit_code == 0, r.output
    knobs = json.loads((out / "baseline-majority-label" / "run.json").read_text())["knobs"]
    assert knobs == {"label": "yes", "source": "oracle", "labels": ["no", "yes"]}  # 3 of the 5 rows say yes
    assert load_summary(out / "baseline-majority-label").accuracy == pytest.approx(3 / 5)
    assert not any("majority" in str(q.messages) for q in made[0].requests)  # it never called the model
    comparisons = json.loads((out / "comparison.json").read_text())
    assert [c["b"] for c in comparisons] == ["direct", "cot", "sc (K=3: ceil of 3 samples/example of mccot)",
                                             "majority-label (oracle)"]
    assert "| majority-label (oracle) |" in (out / "report.md").read_text()


def _toy_numbers(tmp_path: Path, n: int = 6) -> Path:
    path = tmp_path / "numbers.jsonl"
    path.write_text("".join(json.dumps({"id": f"q{i}", "question": f"question {i}: what is {i} + {i}?",
                                        "label": str(2 * i)}) + "\n" for i in range(n)))
    return path


def _doubling(question: str, i: int) -> str:
    """Right on even-numbered questions; on odd ones the first two samples disagree (low agreement)."""
    n = int(question.split("question ")[1].split(":")[0])
    return str(2 * n) if n % 2 == 0 or i >= 2 else str(i)


def test_cascade_baselines_also_run_each_tier_alone(monkeypatch, tmp_path: Path) -> None:
    from tests.unit.fake_answers import FakeAnswers

    _patch_backend(monkeypatch, lambda: FakeAnswers(_doubling))
    data, out = _toy_numbers(tmp_path, 4), tmp_path / "cascade"
    r = cli("eval", "cascade", "--dataset", data, "--answer-kind", "number", "--samples", "2", "--baselines",
            "--out", out, "--no-progress")
    assert r.exit_code == 0, r.output
    for tier, n in (("small", 2), ("small_more_samples", 6)):
        manifest = json.loads((out / f"baseline-tier-{tier}" / "run.json").read_text())
        assert manifest["pattern"] == f"tier-{tier}" and manifest["knobs"] == {"answer_kind": "number", "k": 2}
    assert load_summary(out / "baseline-tier-small_more_samples").accuracy == 1.0
    assert [c["b"] for c in json.loads((out / "comparison.json").read_text())][-2:] == [
        "tier-small", "tier-small_more_samples"]
    metrics = load_summary(out).pattern_metrics
    assert metrics["escalation_rate"] == pytest.approx(0.5) and metrics["escalation_reasons"] == {"low_confidence": 2}
    # sc's budget is the cascade's mean samples: 2 per example, plus 6 more on the half that escalated
    assert json.loads((out / "baseline-sc" / "run.json").read_text())["knobs"]["k"] == 5


def test_calibrate_on_the_same_dataset_never_touches_the_test_rows(monkeypatch, tmp_path: Path) -> None:
    from tests.unit.fake_answers import FakeAnswers

    made = _patch_backend(monkeypatch, lambda: FakeAnswers(_doubling))
    data, out = _toy_numbers(tmp_path, 10), tmp_path / "cal"
    r = cli("eval", "cascade", "--dataset", data, "--answer-kind", "number", "--samples", "2",
            "--calibrate-on", f"{data}:4", "--out", out, "--no-progress")
    assert r.exit_code == 0, r.output
    knobs = json.loads((out / "run.json").read_text())["knobs"]
    how = knobs["calibration"]
    assert how["dev_ids"] == 4 and how["objective"] == "cost_per_success" and how["dataset"] == str(data.resolve())
    assert "dev_test_split" in how["split"] and knobs["threshold"] == json.loads(
        (out / "calibration.json").read_text())["threshold"]
    tested = {json.loads(line)["id"] for line in (out / "results.jsonl").read_text().splitlines()}
    assert len(tested) == 6
    from agentkit.eval import dev_test_split, select_dataset

    dev, test = dev_test_split(select_dataset(data, answer_kind="number").examples, 0.4, seed=0)
    assert {e.id for e in test} == tested and not tested & {e.id for e in dev}
    # calibration asked the model about the dev rows only (every tier once each), then the run the test rows
    calibration_questions = made[0].questions()[:8]
    assert all(any(f"question {e.id[1:]}:" in q for e in dev) for q in calibration_questions)
    assert {json.dumps(r.constraint.value) for r in made[0].requests[:8]} == {
        json.dumps(r.constraint.value) for r in made[0].requests[8:]}  # the tiers the run uses (numbers)
    assert "pattern" in made[0].requests[0].constraint.value["properties"]["answer"]

    again = cli("eval", "cascade", "--dataset", data, "--answer-kind", "number", "--samples", "2",
                "--calibrate-on", f"{data}:4", "--out", out, "--resume", "--no-progress")
    assert again.exit_code == 0, again.output
    assert made[1].requests == []  # the stored calibration was reused, every test row was finished


def test_an_interrupted_calibration_resumes_from_the_dev_rows_it_kept(monkeypatch, tmp_path: Path) -> None:
    import shutil

    from tests.unit.fake_answers import FakeAnswers

    made = _patch_backend(monkeypatch, lambda: FakeAnswers(_doubling))
    data, out = _toy_numbers(tmp_path, 10), tmp_path / "cal"
    args = ("eval", "cascade", "--dataset", data, "--answer-kind", "number", "--samples", "2",
            "--calibrate-on", f"{data}:4", "--out", out, "--no-progress")
    assert cli(*args).exit_code == 0
    lines = (out / "calibration-dev.jsonl").read_text().splitlines()
    # first what the records belong to, then one record per dev row
    assert len(lines) == 1 + 4 and json.loads(lines[0])["knobs"]["k"] == 2
    threshold = json.loads((out / "run.json").read_text())["knobs"]["threshold"]
    # as if stopped in the third dev row's write: two rows kept, a torn line, nothing else written yet
    shutil.rmtree(out)
    out.mkdir()
    (out / "calibration-dev.jsonl").write_text("\n".join(lines[:3]) + "\n" + lines[3][:25])
    again = cli(*args, "--resume")
    assert again.exit_code == 0, again.output
    kept = {json.loads(line)["id"] for line in lines[1:3]}
    redone = {json.loads(line)["id"] for line in lines[3:]}
    asked = made[1].questions()
    assert not any(f"question {i[1:]}:" in q for q in asked for i in kept)  # the kept rows were not asked again
    assert all(any(f"question {i[1:]}:" in q for q in asked[:4]) for i in redone)  # 2 rows x 2 tiers, first
    assert json.loads((out / "run.json").read_text())["knobs"]["threshold"] == threshold
    assert (out / "calibration-dev.jsonl").read_text().splitlines() == lines  # the torn line is gone

    # rows kept for k=2 are not k=3's tiers' outcomes: a resume with k=3 calibrates every dev row afresh
    k3 = tmp_path / "k3"
    k3.mkdir()
    (k3 / "calibration-dev.jsonl").write_text("\n".join(lines[:3]) + "\n")
    other = cli(*[{"2": "3", str(out): str(k3)}.get(str(a), a) for a in args], "--resume")
    assert other.exit_code == 0, other.output
    asked = made[2].questions()[:8]
    assert all(any(f"question {json.loads(line)['id'][1:]}:" in q for q in asked) for line in lines[1:])
    assert json.loads((k3 / "calibration-dev.jsonl").read_text().splitlines()[0])["knobs"]["k"] == 3


def test_calibrate_on_another_dataset_uses_its_first_n_rows(monkeypatch, tmp_path: Path) -> None:
    from tests.unit.fake_answers import FakeAnswers

    made = _patch_backend(monkeypatch, lambda: FakeAnswers(_doubling))
    dev_dir = tmp_path / "dev"
    dev_dir.mkdir()
    dev, data, out = _toy_numbers(dev_dir, 8), _toy_numbers(tmp_path, 3), tmp_path / "cal"
    r = cli("eval", "cascade", "--dataset", data, "--answer-kind", "number", "--samples", "2",
            "--calibrate-on", f"{dev}:2", "--target-accuracy", "0.9", "--out", out, "--no-progress")
    assert r.exit_code == 0, r.output
    how = json.loads((out / "run.json").read_text())["knobs"]["calibration"]
    assert how["dev_ids"] == 2 and how["objective"] == "target_accuracy" and how["target_accuracy"] == 0.9
    assert how["split"] == f"the first 2 rows of {dev.resolve()}" and how["reached_target"] is True
    assert len(made[0].requests) == 2 * 2 + 3 + 1  # 2 dev rows x 2 tiers, then 3 test rows (one escalates)


@pytest.mark.parametrize(("args", "expect"), [
    (["eval", "mccot", "--dataset", "gsm8k", "--calibrate-on", "gsm8k", "--out", "o"], "calibrates a cascade"),
    (["eval", "cascade", "--dataset", "gsm8k", "--calibrate-on", "gsm8k", "-o", "threshold=0.5", "--out", "o"],
     "drop -o threshold"),
    (["eval", "cascade", "--dataset", "gsm8k", "--target-accuracy", "0.5", "--out", "o"], "pass --calibrate-on"),
    (["eval", "cascade", "--dataset", "gsm8k", "--limit", "3", "--calibrate-on", "gsm8k:3", "--out", "o"],
     "leave no test rows"),
    (["eval", "cascade", "--dataset", "gsm8k", "--calibrate-on", "gsm8k:0", "--out", "o"], "at least 1 dev row"),
])
def test_calibrate_on_mistakes_exit_2(no_backend, tmp_path: Path, monkeypatch, args, expect) -> None:
    monkeypatch.chdir(tmp_path)
    assert expect in _one_line_error(cli(*args))


def test_resuming_sc_at_another_budget_is_refused(monkeypatch, tmp_path: Path) -> None:
    from tests.unit.fake_answers import FakeAnswers

    _patch_backend(monkeypatch, lambda: FakeAnswers(_doubling))
    data, out = _toy_numbers(tmp_path, 2), tmp_path / "run"
    base = ["eval", "mccot", "--dataset", data, "--answer-kind", "number", "--baselines", "--out", out, "--no-progress"]
    assert cli(*base, "--samples", "2").exit_code == 0
    sc = out / "baseline-sc"
    assert json.loads((sc / "run.json").read_text())["knobs"]["k"] == 2
    err = _one_line_error(cli(*base, "--samples", "2", "--resume", "-o", "max_tokens=100"))
    assert "holds a different run" in err  # the pattern's own knobs changed: refused before any model
    (out / "results.jsonl").write_text((out / "results.jsonl").read_text().replace('"samples":2', '"samples":3'))
    err = _one_line_error(cli(*base, "--samples", "2", "--resume"))
    assert f"{sc} ran sc with K=2, but mccot's finished results now give K=3" in err
