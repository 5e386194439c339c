"""bench/results.py --page: RESULTS.md's tables are written from the run directories, and a table
that no longer matches its runs, or a run whose paired comparisons no longer recompute from its
results, is named (bench/_results_page.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import bench_module
from tests.unit.test_cli_eval import _patch_backend, cli, yes_no  # noqa: F401 (yes_no is a fixture)

REPORT = """# agentkit eval: mccot on gsm8k

| metric | value |
|---|---|
| accuracy | 12.0% |

## Paired comparisons

| a | b |
"""
PAGE = """# Results

Hand-written prose stays as it is.

<!-- runs: run llamacpp/mccot-gsm8k -->
(to be generated)
<!-- /runs -->

<!-- runs: linc-variants llamacpp/linc-variants prontoqa -->
<!-- /runs -->
The end.
"""


def _linc_report(home: Path, datasets: list[str]) -> str:
    return f"### {datasets[0]}\n\n| run | n |\n| paper | {len(list((home / datasets[0]).iterdir()))} |\n\n"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    run = tmp_path / "runs" / "llamacpp" / "mccot-gsm8k"
    run.mkdir(parents=True)
    (run / "report.md").write_text(REPORT, encoding="utf-8")
    (run / "comparison.json").write_text("[]\n", encoding="utf-8")  # a run without baselines
    (tmp_path / "runs" / "llamacpp" / "linc-variants" / "prontoqa" / "paper").mkdir(parents=True)
    return tmp_path / "runs"


def test_sync_writes_each_table_from_its_runs_and_keeps_the_prose(root: Path) -> None:
    page = bench_module("_results_page")
    synced = page.sync(PAGE, root, _linc_report)
    assert synced == """# Results

Hand-written prose stays as it is.

<!-- runs: run llamacpp/mccot-gsm8k -->
| metric | value |
|---|---|
| accuracy | 12.0% |

#### Paired comparisons

| a | b |
<!-- /runs -->

<!-- runs: linc-variants llamacpp/linc-variants prontoqa -->
### prontoqa

| run | n |
| paper | 1 |
<!-- /runs -->
The end.
"""
    assert page.stale(synced, root, _linc_report) == []
    assert page.sync(synced, root, _linc_report) == synced


def test_a_table_that_differs_from_its_runs_is_named(root: Path) -> None:
    page = bench_module("_results_page")
    synced = page.sync(PAGE, root, _linc_report)
    assert page.stale(PAGE, root, _linc_report) == [
        "run llamacpp/mccot-gsm8k: the table differs from its runs",
        "linc-variants llamacpp/linc-variants prontoqa: the table differs from its runs"]
    edited = synced.replace("| accuracy | 12.0% |", "| accuracy | 14.0% |")
    assert page.stale(edited, root, _linc_report) == ["run llamacpp/mccot-gsm8k: the table differs from its runs"]
    (root / "llamacpp" / "linc-variants" / "prontoqa" / "sentence").mkdir()  # a run was added since
    assert page.stale(synced, root, _linc_report) == [
        "linc-variants llamacpp/linc-variants prontoqa: the table differs from its runs"]
    (root / "llamacpp" / "mccot-gsm8k" / "comparison.json").unlink()
    (lost,) = page.stale(synced, root, _linc_report)[:1]
    assert lost.startswith("run llamacpp/mccot-gsm8k: comparison.json does not recompute: ") and "cannot read it" in lost


@pytest.mark.parametrize(("marker", "message"), [
    ("run llamacpp/daslam-gsm8k", "daslam-gsm8k/report.md is missing; finish the run"),
    ("linc-variants llamacpp/linc-variants folio-clean", "linc-variants/folio-clean is missing"),
    ("table llamacpp/mccot-gsm8k", "use 'run BACKEND/NAME' or 'linc-variants BACKEND/DIR DATASET'"),
])  # fmt: skip
def test_a_marker_naming_no_runs_is_refused_with_what_to_do(root: Path, marker: str, message: str) -> None:
    page = bench_module("_results_page")
    with pytest.raises(page.PageError, match=message):
        page.sync(f"<!-- runs: {marker} -->\n<!-- /runs -->\n", root, _linc_report)


def test_the_cli_syncs_the_page_and_check_fails_on_a_stale_one(root: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    results = bench_module("results")
    path = tmp_path / "RESULTS.md"
    path.write_text("<!-- runs: run llamacpp/mccot-gsm8k -->\n<!-- /runs -->\n", encoding="utf-8")
    assert results.main(["--page", str(path), "--out", str(root), "--check"]) == 1
    assert "run llamacpp/mccot-gsm8k: the table differs from its runs" in capsys.readouterr().err
    assert results.main(["--page", str(path), "--out", str(root)]) == 0
    assert "| accuracy | 12.0% |" in path.read_text(encoding="utf-8")
    path.write_text("<!-- runs: run vllm/mccot-gsm8k -->\n<!-- /runs -->\n", encoding="utf-8")
    assert results.main(["--page", str(path), "--out", str(root)]) == 2
    assert "vllm/mccot-gsm8k/report.md is missing" in capsys.readouterr().err


def test_a_run_whose_comparisons_no_longer_recompute_from_its_results_is_named(yes_no, monkeypatch,  # noqa: F811
                                                                                tmp_path: Path) -> None:
    from tests.unit.fake_answers import FakeAnswers

    page, results = bench_module("_results_page"), bench_module("results")
    _patch_backend(monkeypatch, lambda: FakeAnswers(lambda question, i: "yes" if "2" in question else "no"))
    run = tmp_path / "runs" / "llamacpp" / "toy"
    r = cli("eval", "mccot", "--dataset", yes_no, "--samples", "3", "--baselines", "--out", run, "--no-progress")
    assert r.exit_code == 0, r.output
    path = tmp_path / "RESULTS.md"
    path.write_text("<!-- runs: run llamacpp/toy -->\n<!-- /runs -->\n", encoding="utf-8")
    assert results.main(["--page", str(path), "--out", str(tmp_path / "runs")]) == 0
    assert results.main(["--page", str(path), "--out", str(tmp_path / "runs"), "--check"]) == 0
    assert page.unreproduced(run) == []

    direct = run / "baseline-direct" / "results.jsonl"  # one baseline result changed after the comparison
    rows = [json.loads(line) for line in direct.read_text(encoding="utf-8").splitlines()]
    rows[0]["correct"] = not rows[0]["correct"]
    direct.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    assert page.unreproduced(run) == ["mccot vs direct"]
    assert results.main(["--page", str(path), "--out", str(tmp_path / "runs"), "--check"]) == 1


def test_the_landed_results_page_matches_the_landed_runs() -> None:
    """docs/RESULTS.md as committed: every table is what its runs in docs/runs give, and every run's
    comparison.json recomputes from its results (rerun ``bench/results.py --page docs/RESULTS.md``
    after adding run data)."""
    results = bench_module("results")
    root = Path(__file__).resolve().parents[2]
    page = (root / "docs" / "RESULTS.md").read_text(encoding="utf-8")
    assert page.count("<!-- runs: ") >= 6  # the page is generated, not hand-copied
    assert results._results_page.stale(page, root / "docs" / "runs", results.linc_report) == []
