"""graphs/, tools/ and verifiers/ must install as agentkit.graphs/.tools/.verifiers, for both a
regular and an editable install; every source package (any directory with an ``__init__.py``,
such as agentkit/cli) must be installed, the evaluation data must ship inside the package, the
``agentkit`` command must start, and pip must print no setuptools warnings while building."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: source directory -> the package it installs as (pyproject's package-dir)
ROOTS = {"agentkit": "agentkit", "graphs": "agentkit.graphs", "tools": "agentkit.tools", "verifiers": "agentkit.verifiers"}
DATA = ROOT / "agentkit" / "eval" / "data"
#: setuptools' one informational note on an editable install with a package-dir mapping (the
#: Makefile filters it); anything else that looks like a warning class fails the test
EDITABLE_NOTE = "BuildBackendWarning: Editable installation."
WARNING = re.compile(r"\b[A-Z][A-Za-z]*Warning\b")

CHECK = """
import importlib.util, json, sys
import agentkit.graphs, agentkit.tools, agentkit.verifiers, agentkit.graphs.mccot, agentkit.verifiers.fol
from agentkit.eval import load_dataset
def origin(name):
    try:
        spec = importlib.util.find_spec(name)
    except ModuleNotFoundError:  # a parent package is missing
        return None
    return spec.origin if spec else None
print(json.dumps({
    "origins": {name: origin(name) for name in json.loads(sys.argv[1])},
    "bare_names": [n for n in ("graphs", "tools", "verifiers") if importlib.util.find_spec(n) is not None],
    "folio_rows": len(load_dataset("folio")),
}))
"""


def source_packages() -> dict[str, Path]:
    """Every package in the source tree, by installed name -> its ``__init__.py``."""
    found: dict[str, Path] = {}
    for top, name in ROOTS.items():
        for init in sorted((ROOT / top).rglob("__init__.py")):
            rel = init.parent.relative_to(ROOT / top)
            if "__pycache__" in rel.parts:
                continue
            found[".".join([name, *rel.parts])] = init
    return found


def _warnings(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines() if WARNING.search(line) and EDITABLE_NOTE not in line]


def test_the_source_tree_has_the_packages_this_test_expects() -> None:
    """Guards the walk above: if it found nothing, the install test would check nothing."""
    names = source_packages()
    assert {"agentkit", "agentkit.backends", "agentkit.eval", "agentkit.graphs", "agentkit.tools",
            "agentkit.verifiers"} <= set(names)  # fmt: skip
    assert any(p.is_file() for p in DATA.rglob("*.jsonl"))


@pytest.mark.parametrize("editable", [False, True], ids=["install", "editable"])
def test_subpackages_install_under_the_agentkit_namespace(tmp_path: Path, editable: bool) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = Path(subprocess.check_output([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip())
    # dependencies come from the test environment; a path line in a .pth does not run that
    # directory's own .pth files, so the test environment's editable agentkit stays invisible
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    target = ["-e", str(ROOT)] if editable else [str(ROOT)]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}  # what a user sees
    pip = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", *target],
                         capture_output=True, text=True, cwd=tmp_path, env=env)  # fmt: skip
    assert pip.returncode == 0, pip.stderr[-3000:]
    assert _warnings(pip.stdout + pip.stderr) == [], "pip install printed build warnings:\n" + pip.stderr[-3000:]

    packages = source_packages()
    out = subprocess.run([str(py), "-c", CHECK, json.dumps(sorted(packages))], capture_output=True, text=True,
                         cwd=tmp_path, check=False)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    found = json.loads(out.stdout)
    for name, init in packages.items():
        expected = init if editable else site.joinpath(*name.split("."), "__init__.py")
        assert found["origins"][name] is not None, f"{name} ({init}) is not installed"
        assert Path(found["origins"][name]) == expected, name
    assert found["bare_names"] == [], "no top-level graphs/tools/verifiers may be installed"
    assert found["folio_rows"] == 204

    if not editable:  # every data file ships inside the package
        shipped = {p.relative_to(site / "agentkit") for p in (site / "agentkit" / "eval" / "data").rglob("*") if p.is_file()}
        source = {p.relative_to(ROOT / "agentkit") for p in DATA.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
        assert source - shipped == set(), "data files missing from the install"

    cli = subprocess.run([str(venv / "bin" / "agentkit"), "--help"], capture_output=True, text=True, cwd=tmp_path)
    assert cli.returncode == 0 and "run" in cli.stdout, cli.stderr[-2000:]

