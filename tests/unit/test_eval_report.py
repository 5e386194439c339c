"""Report files: summary.json round-trips, report.md is a table, report.png is a real PNG."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from agentkit.errors import ConfigError
from agentkit.eval import (
    ExampleResult,
    Summary,
    Usage,
    compare,
    load_summary,
    render_markdown,
    summarize,
    write_report,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _summary(pattern: str, n_correct: int, n: int = 10, tokens: int = 1000, model: str = "SmolLM2-135M") -> Summary:
    results = [
        ExampleResult(id=f"e{i}", prediction="a", label="a", correct=i < n_correct, latency_s=0.1 * (i + 1),
                      calls=1, usage=Usage(input_tokens=tokens, output_tokens=tokens // 10,
                                           by_model={model: {"input_tokens": tokens, "output_tokens": tokens // 10}}))
        for i in range(n)
    ]
    return summarize(results).model_copy(update={"pattern": pattern, "dataset": "folio"})


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_write_report_with_baselines(tmp_path: Path) -> None:
    main = _summary("linc", 8)
    baselines = {"naive": _summary("naive", 5, tokens=300), "cot": _summary("cot", 6, model="Qwen3-8B")}
    files = write_report(tmp_path / "run", main, baselines=baselines)
    assert files.summary_json == tmp_path / "run" / "summary.json"
    assert load_summary(tmp_path / "run") == main
    md = files.report_md.read_text(encoding="utf-8")
    assert md.startswith("# agentkit eval: linc on folio")
    assert "| accuracy | 80.0% |" in md
    assert "| examples (n) | 10 |" in md
    assert "## Pattern vs baselines" in md
    for name, acc in (("linc", "80.0%"), ("naive", "50.0%"), ("cot", "60.0%")):
        row = next(line for line in md.splitlines() if line.startswith(f"| {name} |"))
        assert acc in row
    assert "not dollars" in md
    width, height = _png_size(files.report_png)
    assert (width, height) == (640, 480)
    assert files.report_png.stat().st_size > 5000  # a drawn plot, not an empty canvas
    assert not list((tmp_path / "run").glob(".*.tmp"))  # atomic writes leave no temp files


def test_write_report_single_run_and_empty_run(tmp_path: Path) -> None:
    files = write_report(tmp_path / "a", _summary("maj", 3))
    assert "Pattern vs baselines" not in files.report_md.read_text(encoding="utf-8")
    assert _png_size(files.report_png) == (640, 480)
    empty = write_report(tmp_path / "b", summarize([]))
    assert _png_size(empty.report_png) == (640, 480)
    assert load_summary(empty.summary_json).n == 0


def test_markdown_escapes_pipes_and_shows_missing_values() -> None:
    s = summarize([]).model_copy(update={"pattern": "a|b"})
    md = render_markdown(s)
    assert "a\\|b" in md
    assert "| accuracy | – |" in md


def test_a_patterns_nested_figures_read_as_figures_not_json() -> None:
    metrics = {"escalation_rate": 0.25, "escalation_reasons": {}, "unrouted": 0,
               "tiers": {"small": {"accuracy": 0.03, "answered": 100, "cost_per_success": 1.7026019999999995},
                         "large": {"accuracy": 0.5, "answered": 4, "cost_per_success": None}}}
    md = render_markdown(_summary("cascade", 3).model_copy(update={"pattern_metrics": metrics}))
    assert "| escalation rate (pattern) | 25.0% |" in md
    assert "| escalation reasons (pattern) | none |" in md
    assert "| unrouted (pattern) | 0 |" in md
    assert ("| tiers (pattern) | small (accuracy 3.0%, answered 100, cost per success 1.703), "
            "large (accuracy 50.0%, answered 4, cost per success –) |") in md


def test_compare_side_by_side(tmp_path: Path) -> None:
    write_report(tmp_path / "mccot-run", _summary("mccot", 7))
    write_report(tmp_path / "cascade-run", _summary("cascade", 9))
    write_report(tmp_path / "cascade-run2", _summary("cascade", 4))
    text = compare([tmp_path / "mccot-run", tmp_path / "cascade-run", str(tmp_path / "cascade-run2")])
    header = text.splitlines()[0]
    assert header == "| metric | mccot (mccot-run) | cascade (cascade-run) | cascade (cascade-run2) |"
    assert "| accuracy | 70.0% | 90.0% | 40.0% |" in text
    with pytest.raises(ConfigError, match=r"no summary\.json"):
        compare([tmp_path / "nowhere"])
    with pytest.raises(ConfigError):
        compare([])


def test_load_summary_rejects_garbage(tmp_path: Path) -> None:
    (tmp_path / "summary.json").write_text('{"n": "many"}')
    with pytest.raises(ConfigError, match="not a valid summary"):
        load_summary(tmp_path)


# --------------------------------------------------------------------------- statistics in the report


def _run(path: Path, pattern: str, outcomes: list[bool], labels: list[str] | None = None) -> Path:
    """A finished run directory (results.jsonl + summary.json) on a True/False set."""
    results = [ExampleResult(id=f"e{i}", prediction=("True" if i % 2 else "False") if ok else None,
                             label="True" if i % 2 else "False", correct=ok) for i, ok in enumerate(outcomes)]
    path.mkdir(parents=True)
    (path / "results.jsonl").write_text("".join(r.model_dump_json() + "\n" for r in results), encoding="utf-8")
    write_report(path, summarize(results, labels=labels).model_copy(update={"pattern": pattern, "dataset": "toy"}))
    return path


def test_report_shows_intervals_comparisons_and_confusion(tmp_path: Path) -> None:
    from agentkit.eval.statistics import Comparison

    main = summarize([ExampleResult(id=f"e{i}", prediction="True", label="True" if i < 3 else "False",
                                    correct=i < 3) for i in range(5)], labels=["True", "False"])
    comparisons = [Comparison(a="linc", b="direct", n_paired=5, diff=0.2, diff_ci95=(-0.2, 0.6), mcnemar_p=0.01),
                   Comparison(a="linc", b="cot", n_paired=5, diff=-0.1, diff_ci95=(-0.4, 0.2), mcnemar_p=0.04)]
    md = render_markdown(main.model_copy(update={"pattern": "linc"}), comparisons=comparisons)
    assert "| accuracy 95% CI (Wilson) | 23.1–88.2% |" in md  # Wilson 3/5
    assert "balanced accuracy 95% CI (adjusted Wald)" in md
    assert "## Paired comparisons" in md and "Holm correction was applied across the 2 McNemar tests" in md
    # Holm over the two shown: 2 · 0.01 = 0.02; max(0.02, 1 · 0.04) = 0.04
    assert "| linc | direct | 5 | +20.0 pts | -20.0 to +60.0 pts | 0.010 | 0.020 | no |" in md
    assert "| linc | cot | 5 | -10.0 pts | -40.0 to +20.0 pts | 0.040 | 0.040 | no |" in md
    assert "## Confusion matrix" in md
    assert "| gold / predicted | False | True |" in md
    assert "| False | 0 | 2 |" in md and "| True | 0 | 3 |" in md


def test_compare_pairs_each_run_with_the_first(tmp_path: Path) -> None:
    a = _run(tmp_path / "a", "linc", [True] * 9 + [False], labels=["True", "False"])
    b = _run(tmp_path / "b", "direct", [False] * 9 + [True])
    summary_only = tmp_path / "c"
    write_report(summary_only, _summary("cot", 5))
    text = compare([a, b, summary_only])
    assert "## Paired comparisons" in text
    # 9 only a right, 1 only b right: diff +80 pts, McNemar 2 · (1 + 10)/1024 = 0.021484375
    assert "| linc (a) | direct (b) | 10 | +80.0 pts |" in text and "| 0.021 | 0.021 | no |" in text
    assert "No paired comparison for cot (c): no results.jsonl." in text
    assert "## Confusion matrix: linc (a)" in text  # only the labelled run has one


def test_cli_compare_writes_the_json(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from agentkit.cli import app

    a = _run(tmp_path / "a", "linc", [True] * 9 + [False])
    b = _run(tmp_path / "b", "direct", [False] * 9 + [True])
    out = tmp_path / "cmp" / "comparison.json"
    r = CliRunner().invoke(app, ["eval", "--compare", str(a), str(b), "--json", str(out)])
    assert r.exit_code == 0, r.output
    assert "## Paired comparisons" in r.stdout
    data = json.loads(out.read_text(encoding="utf-8"))
    assert [set(d) >= {"a", "b", "n_paired", "diff", "diff_ci95", "mcnemar_p"} for d in data] == [True]
    assert (data[0]["a"], data[0]["b"], data[0]["n_paired"], data[0]["mcnemar_p"]) == (
        "linc (a)", "direct (b)", 10, 0.021484375)
    r = CliRunner().invoke(app, ["eval", "linc", "--json", str(out)])
    assert r.exit_code == 2 and "pass --compare too" in r.output
