"""bench/linc_variants.py: a variant's checks twin replays the variant's own generations (no model
call, same programs), and the report reads the finished runs into its tables."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import ModuleType

from tests.helpers import bench_module
from tests.unit.test_linc import HAWKS, Scripted, _program

#: every sample copies the conclusion into the premises, so the prover says True
COPIES_THE_CONCLUSION = _program(HAWKS, "∀x (Hawk(x) → ¬Lands(x))", "∀x (Bird(x) → Lands(x))",
                                 "∀x (Bird(x) → Lands(x))")


def _bench() -> ModuleType:
    return bench_module("linc_variants")


def test_the_checks_twin_replays_the_variants_generations_and_the_report_shows_both(tmp_path: Path) -> None:
    bench = _bench()
    data = tmp_path / "hawks.jsonl"
    data.write_text(json.dumps({"id": "hawks", "premises": HAWKS.premises, "conclusion": HAWKS.conclusion,
                                "label": "False"}) + "\n", encoding="utf-8")
    args = argparse.Namespace(limit=None, samples=3, seed=1, concurrency=1)
    parser = Scripted([COPIES_THE_CONCLUSION] * 3)
    bench.run_variant(tmp_path / "runs", str(data), "paper", args, parser)

    assert len(parser.requests) == 1  # the twin made no call of its own: it replayed the cassette
    cassette = tmp_path / "runs" / "hawks" / "paper.cassette.jsonl"
    assert len(cassette.read_text(encoding="utf-8").splitlines()) == 1
    rows = {}
    for name in ("paper", "paper+checks"):
        (line,) = (tmp_path / "runs" / "hawks" / name / "results.jsonl").read_text(encoding="utf-8").splitlines()
        rows[name] = json.loads(line)
    assert rows["paper"]["prediction"] == "True"  # the copied conclusion is "proved"...
    assert rows["paper"]["extra"]["sample_findings"] == [["conclusion_in_premises"]] * 3
    assert rows["paper+checks"]["prediction"] is None  # ...and refused by the checks, the same 3 samples
    assert rows["paper+checks"]["extra"]["invalid"] == {"conclusion_in_premises": 3}

    table = bench.report(tmp_path / "runs", [str(data)])
    assert "| paper | 1 | 0.0% |" in table and "| paper+checks | 1 | 0.0% |" in table
    assert "| paper+checks | paper | 1 | +0.0 pts |" in table  # the twin against its variant, paired
