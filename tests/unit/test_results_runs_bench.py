"""bench/results.py, the runs behind docs/RESULTS.md: every run's command line is one the CLI accepts
(its pattern, dataset, limit and knobs check), a started run resumes, and the report gathers the
finished runs' pages."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from agentkit.cli._common import pattern_knobs
from agentkit.eval.runner import select_dataset
from agentkit.graphs import get_pattern
from tests.helpers import bench_module


def _options(options: tuple[str, ...], flag: str) -> list[str]:
    return [options[i + 1] for i, item in enumerate(options) if item == flag]


@pytest.mark.parametrize("run", bench_module("results").RUNS, ids=lambda run: run.name)
def test_every_run_names_a_known_pattern_dataset_and_knobs(run) -> None:
    pattern = get_pattern(run.pattern)
    samples = _options(run.options, "--samples")
    knobs = pattern_knobs(pattern, samples=int(samples[0]) if samples else None, seed=1,
                          options=_options(run.options, "-o"))
    assert knobs["seed"] == 1
    assert len(select_dataset(run.dataset, limit=run.limit).examples) == run.limit  # the set has the rows
    if run.pattern == "linc":
        assert (knobs["k"], knobs["shots"]) == (10, "folio8")  # the paper's settings


def test_a_started_run_resumes_and_the_report_names_unfinished_runs(tmp_path: Path) -> None:
    bench = bench_module("results")
    args = argparse.Namespace(backend="vllm", base_url=["http://127.0.0.1:9/v1"], concurrency=4)
    run = bench.selected("maj-gsm8k-judge")[0]
    line = bench.command(run, tmp_path, args)
    assert line[3:6] == ["eval", "maj", "--dataset"] and "--baselines" in line and "--resume" not in line
    assert line[line.index("--out") + 1] == str(tmp_path / "vllm" / "maj-gsm8k-judge")
    assert "--base-url=http://127.0.0.1:9/v1" in line
    (tmp_path / "vllm" / "maj-gsm8k-judge").mkdir(parents=True)
    (tmp_path / "vllm" / "maj-gsm8k-judge" / "run.json").write_text("{}", encoding="utf-8")
    assert bench.command(run, tmp_path, args)[-1] == "--resume"
    served = argparse.Namespace(**vars(args), max_in_flight=24, request_timeout=1800.0)
    line = bench.command(run, tmp_path, served)
    assert line[line.index("--max-in-flight") + 1] == "24" and line[line.index("--request-timeout") + 1] == "1800"

    (tmp_path / "vllm" / "maj-gsm8k-judge" / "report.md").write_text("| maj | 100 |\n", encoding="utf-8")
    page = bench.report(tmp_path, "vllm", bench.selected("maj-gsm8k-judge,linc-prontoqa"))
    assert "## maj-gsm8k-judge (vllm)\n\n| maj | 100 |" in page
    assert "## linc-prontoqa (vllm)\n\n(not finished)" in page
    with pytest.raises(SystemExit, match="unknown run"):
        bench.selected("nope")
