"""The pattern examples are scripts users copy: each must run as shipped on the embedded SmolLM2 and
print what its docstring promises. Accuracy is not asserted (a 135M model); the shape of the output is."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(script: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True,
                          timeout=600, cwd=EXAMPLES.parent)
    assert proc.returncode == 0, f"{script} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    return proc.stdout


def test_daslam_example_prints_attempt_subquestions_and_final_answer() -> None:
    out = _run("daslam.py")
    assert out.startswith("Problem: Janet")
    assert "Initial attempt:" in out and "Final answer:" in out
    assert re.search(r"^  1\. ", out, re.M), out  # at least one sub-question was posed and answered
    assert re.search(r"^Gold 18: initial (right|wrong), final (right|wrong), decomposition (changed|kept)", out, re.M)


def test_maj_example_prints_every_judge_turn_and_the_board_verdict() -> None:
    out = _run("maj.py")
    turns = re.findall(r"^round (\d) (\w+)", out, re.M)
    assert {judge for _, judge in turns} == {"deductive_reasoner", "logical_reasoner", "robust_reasoner"}, out
    assert re.search(r"^Board verdict: (correct|incorrect) \(agreement [01]\.\d\d, deliberation rounds [0-2]\); "
                     r"gold: (correct|incorrect)$", out, re.M), out


def test_linc_example_prints_each_sample_program_and_the_vote() -> None:
    out = _run("linc.py", "folio-val-0045", "--k", "2")
    assert len(re.findall(r"^Sample \d: (True|False|Uncertain|Error)", out, re.M)) == 2, out
    assert re.search(r"^LINC says (True|False|Uncertain); FOLIO's gold label is (True|False|Uncertain)$", out, re.M)


def test_cascade_example_runs_offline_and_prints_the_route_as_json() -> None:
    out = _run("cascade.py", "--k", "2")
    result = json.loads(out.strip().splitlines()[-1])
    assert result["answered_by"] in ("small", "small_more_samples")
    assert result["gold"] == "18" and result["cost"] > 0
    assert "tier small (" in out
