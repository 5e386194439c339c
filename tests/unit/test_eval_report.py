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
