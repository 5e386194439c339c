"""bench/linc_variants.py: a variant's checks twin replays the variant's own generations (no model
call, same programs), and the report reads the finished runs into its tables."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from types import ModuleType

import pytest

from agentkit.cli._common import pattern_knobs
from agentkit.errors import GenerationTimeout
from agentkit.graphs import get_pattern
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
    rows_of = {}
    for line in table.splitlines():  # the first table's row of each run (the comparisons come after it)
        rows_of.setdefault(line.split(" | ")[0], line)
    assert rows_of["| paper"].endswith("| True 1 |")  # the answers as given, even with no label set
    assert rows_of["| paper+checks"].endswith("| (none) 1 |")
    assert "| paper+checks | paper | 1 | +0.0 pts |" in table  # the twin against its variant, paired
    assert "| paper | sc |" not in table
    assert "#### Against paper mode" in table

    shutil.copytree(tmp_path / "runs" / "hawks" / "paper", tmp_path / "runs" / "hawks" / "sc")  # a stand-in vote
    table = bench.report(tmp_path / "runs", [str(data)])
    assert "| paper | sc | 1 | +0.0 pts |" in table  # each LINC run against the vote of its own budget
    assert "| paper+checks | sc | 1 | +0.0 pts |" in table
    # sc is also the best single-model baseline here: the pair is shown once, under its family's heading
    assert table.count("| paper | sc |") == 1
    assert "#### Against the vote of the same budget" in table
    assert "#### Against the best single-model baseline" not in table


def _grounded_results(home: Path, samples: list[int]) -> None:
    (home / "grounded").mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"id": f"q{i}", "label": "True", "prediction": "True", "correct": True,
                         "extra": {"samples": n}}) for i, n in enumerate(samples)]
    (home / "grounded" / "results.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_the_budget_vote_waits_for_the_grounded_run_then_takes_its_rounded_up_mean(tmp_path: Path,
                                                                                   monkeypatch) -> None:
    bench = _bench()
    data = tmp_path / "q.jsonl"
    data.write_text("".join(json.dumps({"id": f"q{i}", "premises": ["p"], "conclusion": "c", "label": "True"}) + "\n"
                            for i in range(3)), encoding="utf-8")
    calls: list[tuple[str, str | None, list[str]]] = []
    monkeypatch.setattr(bench, "_eval", lambda out, ds, name, args, run=None, options=(): calls.append(
        (name, run, list(options))))
    args = argparse.Namespace(limit=None, seed=1)
    home = tmp_path / "runs" / "q"
    _grounded_results(home, [96, 100])  # q2 not finished yet

    assert bench.run_budget_baseline(tmp_path / "runs", str(data), args) is None
    assert calls == []

    _grounded_results(home, [96, 100, 97])
    assert bench.run_budget_baseline(tmp_path / "runs", str(data), args) == 98  # ceil(293 / 3)
    ((name, run, options),) = calls
    assert (name, run) == ("sc", "sc-sentence-budget")
    knobs = pattern_knobs(get_pattern("sc"), samples=None, seed=None, options=[options[i + 1] for i, flag in enumerate(options) if flag == "-o"])
    assert knobs["temperature"] == 0.8
    assert knobs["budget"] == {"pattern": "linc grounded", "rule": "ceil(mean samples per example)",
                               "mean_samples": 97.6667, "examples": 3}
    assert options[:4] == ["--seed", "1", "--samples", "98"]


def test_the_baselines_run_at_the_variants_concurrency(tmp_path: Path, monkeypatch) -> None:
    bench = _bench()
    commands: list[list[str]] = []
    monkeypatch.setattr(bench.subprocess, "run", lambda command, **kw: commands.append(command))
    args = argparse.Namespace(limit=4, samples=5, seed=1, concurrency=16, backend="vllm",
                              base_url=["http://127.0.0.1:8000/v1"], max_in_flight=48, request_timeout=1800.0)

    bench.run_baselines(tmp_path, "prontoqa", args)

    assert [c[c.index("eval") + 1] for c in commands] == ["direct", "cot", "sc", "majority-label"]
    for command in commands:
        assert command[command.index("--concurrency") + 1] == "16"
        assert command[command.index("--max-in-flight") + 1] == "48"
        assert command[command.index("--request-timeout") + 1] == "1800"
        assert "--base-url=http://127.0.0.1:8000/v1" in command


class _Down:
    """A server that never answers: every request fails as a backend fault."""

    provider, model = "vllm", "down"

    async def generate(self, request: object) -> object:
        raise GenerationTimeout("POST /v1/chat/completions sent no answer within 300s")


def test_a_variant_run_that_stops_early_does_not_start_its_checks_twin(tmp_path: Path) -> None:
    bench = _bench()
    data = tmp_path / "hawks.jsonl"
    data.write_text("".join(json.dumps({"id": f"h{i}", "premises": HAWKS.premises, "conclusion": HAWKS.conclusion,
                                        "label": "False"}) + "\n" for i in range(4)), encoding="utf-8")
    args = argparse.Namespace(limit=None, samples=3, seed=1, concurrency=1)

    with pytest.raises(SystemExit, match="paper on .*hawks.jsonl left 4 examples unfinished.*rerun to resume"):
        bench.run_variant(tmp_path / "runs", str(data), "paper", args, _Down())

    home = tmp_path / "runs" / "hawks"
    assert not (home / "paper+checks").exists()  # its replay would have missed the unfinished examples


def test_a_packed_cassette_is_restored_so_a_fresh_clone_resumes_the_variant_and_its_twin(tmp_path: Path) -> None:
    bench = _bench()
    data = tmp_path / "hawks.jsonl"
    row = {"premises": HAWKS.premises, "conclusion": HAWKS.conclusion, "label": "False"}
    data.write_text("".join(json.dumps({"id": i, **row}) + "\n" for i in ("h0", "h1")), encoding="utf-8")
    args = argparse.Namespace(limit=1, samples=3, seed=1, concurrency=1)
    bench.run_variant(tmp_path / "runs", str(data), "paper", args, Scripted([COPIES_THE_CONCLUSION] * 3))
    home = tmp_path / "runs" / "hawks"

    (packed,) = bench.pack(tmp_path / "runs")
    assert packed == home / "paper.cassette.jsonl.gz"
    first = packed.read_bytes()
    bench.pack(tmp_path / "runs")
    assert packed.read_bytes() == first  # an unchanged cassette packs to the same bytes: no spurious diffs

    (home / "paper.cassette.jsonl").unlink()  # what a fresh clone has: the packed copy only
    parser = Scripted([COPIES_THE_CONCLUSION] * 3)
    args.limit = 2  # h1 is the same problem again: the same request
    bench.run_variant(tmp_path / "runs", str(data), "paper", args, parser)

    assert parser.requests == []  # h1's request was served from the restored cassette
    for name in ("paper", "paper+checks"):
        ids = [json.loads(line)["id"] for line in (home / name / "results.jsonl").read_text().splitlines()]
        assert ids == ["h0", "h1"]


def test_a_words_variant_has_a_sentence_vote_twin_on_its_own_cassette(tmp_path: Path) -> None:
    from tests.unit.test_linc_words import JOMPUS, RIGHT, Parser

    bench = _bench()
    data = tmp_path / "jompus.jsonl"
    data.write_text(json.dumps({"id": "jompus", "premises": JOMPUS.premises, "conclusion": JOMPUS.conclusion,
                                "label": "False"}) + "\n", encoding="utf-8")
    slip = {"Jompuses are not shy.": "∀x (Jompus(x) → Shy(x))",
            "Every yumpus is a jompus.": "∀x (Jompus(x) → Yumpus(x))", "Max is a yumpus.": "Yumpus(x)"}  # each sample breaks the chain at its own link
    formulas = {s: [slip[s] if i == j else RIGHT[s] for j in range(3)] for i, s in enumerate(JOMPUS.premises)}
    formulas[JOMPUS.conclusion] = [RIGHT[JOMPUS.conclusion]] * 3
    parser = Parser(formulas)
    bench.run_variant(tmp_path / "runs", str(data), "words", argparse.Namespace(limit=None, samples=3, seed=1,
                                                                                 concurrency=1), parser)

    assert len(parser.requests) == 4  # one per sentence; both twins replayed the cassette
    home = tmp_path / "runs" / "jompus"
    rows = {name: json.loads((home / name / "results.jsonl").read_text(encoding="utf-8"))
            for name in ("words", "words+checks", "words+vote")}
    assert rows["words"]["prediction"] == "Uncertain" and rows["words+vote"]["prediction"] == "False"
    assert rows["words+vote"]["extra"]["sentence_agreement"] == pytest.approx(9 / 12)  # 2/3 x 3, then 3/3
    assert "| words+vote | 1 | 100.0% |" in bench.report(tmp_path / "runs", [str(data)])
    assert bench.VOTED == ("words", "polarity", "restrictors", "negation-scope")  # not paper, sentence, grounded
