"""graphs/, tools/ and verifiers/ must install as agentkit.graphs/.tools/.verifiers, for both a
regular and an editable install, and the evaluation data must ship inside the package."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CHECK = """
import importlib.util, json
import agentkit.graphs, agentkit.tools, agentkit.verifiers, agentkit.graphs.mccot, agentkit.verifiers.fol
from agentkit.eval import load_dataset
print(json.dumps({
    "graphs": agentkit.graphs.__file__,
    "tools": agentkit.tools.__file__,
    "verifiers": agentkit.verifiers.__file__,
    "bare_names": [n for n in ("graphs", "tools", "verifiers") if importlib.util.find_spec(n) is not None],
    "folio_rows": len(load_dataset("folio")),
}))
"""


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
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", *target], check=True, cwd=tmp_path)
    out = subprocess.run([str(py), "-c", CHECK], capture_output=True, text=True, cwd=tmp_path, check=True)
    import json

    found = json.loads(out.stdout)
    expected_root = ROOT if editable else site / "agentkit"
    assert Path(found["graphs"]) == expected_root / "graphs" / "__init__.py"
    assert Path(found["tools"]) == expected_root / "tools" / "__init__.py"
    assert Path(found["verifiers"]) == expected_root / "verifiers" / "__init__.py"
    assert found["bare_names"] == [], "no top-level graphs/tools/verifiers may be installed"
    assert found["folio_rows"] == 204
