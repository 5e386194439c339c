"""CLI bad input: one line naming the problem and exit code 2, before any model is loaded."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from agentkit.cli import app

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


def test_unknown_pattern() -> None:
    r = run("run", "treeofthought", "--question", "hi")
    assert r.exit_code == 2
    assert "unknown pattern 'treeofthought'; choose one of:" in r.output
    assert "mccot" in r.output


def test_malformed_input_json_names_the_option() -> None:
    r = run("run", "mccot", "--input", '{"question": ')
    assert r.exit_code == 2
    assert "--input is not valid JSON" in r.output


def test_input_json_missing_field() -> None:
    r = run("run", "mccot", "--input", '{"q": "hi"}')
    assert r.exit_code == 2
    assert "--input field 'question': Field required" in r.output


def test_question_and_input_are_exclusive() -> None:
    r = run("run", "mccot", "--question", "a", "--input", '{"question": "b"}')
    assert r.exit_code == 2
    assert "exactly one of --question" in r.output


def test_missing_gguf_path() -> None:
    r = run("run", "mccot", "--question", "hi", "--model", "/nonexistent/model.gguf")
    assert r.exit_code == 2
    assert "GGUF model file not found: /nonexistent/model.gguf" in r.output


def test_unknown_backend() -> None:
    r = run("run", "mccot", "--question", "hi", "--backend", "tgi")
    assert r.exit_code == 2
    assert "unknown backend 'tgi'" in r.output


@pytest.mark.parametrize("bad", ["0", "-3"])
def test_samples_must_be_positive(bad: str) -> None:
    r = run("run", "mccot", "--question", "hi", "--samples", bad)
    assert r.exit_code == 2


def test_unknown_pattern_option_lists_the_knobs() -> None:
    r = run("run", "mccot", "--question", "hi", "-o", "temprature=0.5")
    assert r.exit_code == 2
    assert "--option 'temprature' is not a knob of mccot; knobs:" in r.output
    assert "temperature" in r.output


def test_malformed_pattern_option() -> None:
    r = run("run", "mccot", "--question", "hi", "-o", "k")
    assert r.exit_code == 2
    assert "is not KEY=VALUE" in r.output


@pytest.mark.parametrize(("command", "knob", "says"), [
    (["run", "mccot", "--question", "hi"], "k=abc", "knob 'k' = \"abc\" is not valid"),
    (["run", "mccot", "--question", "hi"], "max_tokens=-5", "knob 'max_tokens' = -5 is not valid"),
    (["run", "maj", "--input", '{"question": "q", "candidate": "c"}'], "judges=3", "knob 'judges' = 3 is not valid"),
    (["eval", "mccot", "--dataset", "gsm8k", "--out", "unused"], "k=0", "knob 'k' = 0 is not valid"),
])
def test_bad_knob_values_exit_2_with_one_line_naming_knob_value_and_type(command, knob, says, tmp_path) -> None:
    """Checked against build's annotations before any model loads (the llamacpp default is never made)."""
    r = run(*command, "-o", knob)
    assert r.exit_code == 2, r.output
    line = r.output.strip()
    assert "\n" not in line and "Traceback" not in line
    assert says in line and "expected" in line


def test_the_help_lists_every_registered_pattern_and_backend() -> None:
    from agentkit.backends import backend_kinds
    from agentkit.graphs import pattern_names

    r = run("run", "--help")
    flat = " ".join(r.output.split())
    assert all(name in flat for name in pattern_names()) and "direct" in flat and "cot" in flat
    assert all(kind in flat for kind in backend_kinds())
