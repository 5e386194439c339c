"""The layer map of docs/ARCHITECTURE.md, enforced: no import runs from a lower layer to a higher one,
and no library module grows past the size limit.

Imports are read from the source (every ``import``, at module level, inside functions and under
TYPE_CHECKING alike), so a lazy import cannot hide an arrow that runs the wrong way.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: source folder -> the package it installs as (pyproject's package-dir)
PACKAGES = {"agentkit": "agentkit", "graphs": "agentkit.graphs", "tools": "agentkit.tools",
            "verifiers": "agentkit.verifiers"}

#: Lowest first. A module may import its own layer and the layers below it, never above.
LAYERS: list[tuple[str, list[str]]] = [
    ("foundation", [r"agentkit\.errors", r"agentkit\.vocab", r"agentkit\.pricing", r"agentkit\._wiring",
                    r"agentkit\.backends\.base", r"agentkit\.reducers", r"agentkit\.stats",
                    r"agentkit\._?trac\w*", r"agentkit\._pattern_spans", r"agentkit\._phoenix"]),
    ("checks and tools", [r"agentkit\.verifiers(\..+)?", r"agentkit\.tools(\..+)?"]),
    ("engines", [r"agentkit\.backends(\..+)?", r"agentkit\._vllm_env", r"agentkit\._gguf_to_hf"]),
    ("runtime", [r"agentkit", r"agentkit\.decoding", r"agentkit\._text_outputs", r"agentkit\.agent",
                 r"agentkit\.graph", r"agentkit\.compiled", r"agentkit\.tool_use", r"agentkit\.pattern",
                 r"agentkit\.persistence",
                 r"agentkit\._persistence\w*", r"agentkit\._stream\w*", r"agentkit\._interrupt\w*"]),
    ("patterns", [r"agentkit\.graphs(\..+)?"]),
    ("evaluation", [r"agentkit\.eval(\..+)?"]),
    ("command line", [r"agentkit\.cli(\..+)?", r"agentkit\.__main__"]),
]

#: The one module allowed past MAX_LINES (named in docs/ARCHITECTURE.md): a cohesive parser.
MAX_LINES = 450
SIZE_EXCEPTIONS = {"verifiers/_fol_parse.py"}


def layer_of(module: str) -> int:
    for rank, (_, patterns) in enumerate(LAYERS):
        if any(re.fullmatch(p, module) for p in patterns):
            return rank
    raise AssertionError(f"{module} is in no layer of the map: add it to LAYERS and to docs/ARCHITECTURE.md")


def _sources() -> list[tuple[str, Path]]:
    found = []
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = [p for p in path.relative_to(ROOT / folder).with_suffix("").parts if p != "__init__"]
            found.append((".".join([package, *parts]), path))
    return found


def _imports(module: str, path: Path) -> set[str]:
    """Every agentkit module ``path`` imports; ``from agentkit import tracing`` counts as agentkit.tracing."""
    known = {m for m, _ in _sources()}
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("agentkit"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("agentkit"):
            subs = {f"{node.module}.{a.name}" for a in node.names} & known
            out.update(subs or {node.module})
    return {m for m in out if m != module}


def test_no_import_runs_from_a_lower_layer_to_a_higher_one() -> None:
    wrong = []
    for module, path in _sources():
        here = layer_of(module)
        for target in sorted(_imports(module, path)):
            if module == "agentkit" or module.endswith(".__main__"):
                continue  # the package root re-exports the runtime; __main__ only starts the CLI
            if layer_of(target) > here:
                wrong.append(f"{module} ({LAYERS[here][0]}) imports {target} ({LAYERS[layer_of(target)][0]})")
    assert not wrong, "imports against the layer map:\n" + "\n".join(wrong)


def test_the_scan_sees_lazy_and_type_only_imports(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from agentkit.eval import runner\n"
                      "def f():\n    from agentkit import graph\n    import agentkit.cli\n", encoding="utf-8")
    found = _imports("agentkit.backends.sample", sample)
    assert found == {"agentkit.eval.runner", "agentkit.graph", "agentkit.cli"}
    assert all(layer_of(m) > layer_of("agentkit.backends.sample") for m in found)


def test_no_library_module_is_over_the_size_limit() -> None:
    big = []
    for _, path in _sources():
        rel = path.relative_to(ROOT).as_posix()
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_LINES and rel not in SIZE_EXCEPTIONS:
            big.append(f"{rel}: {lines} lines")
    assert not big, f"modules over {MAX_LINES} lines: {big}"


def test_the_map_is_the_one_docs_describe() -> None:
    doc = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    for name, _ in LAYERS:
        assert name in doc, f"docs/ARCHITECTURE.md does not describe the {name!r} layer"
    for exception in SIZE_EXCEPTIONS:
        assert exception in doc


@pytest.mark.parametrize("module", ["agentkit.graphs.mccot", "agentkit.eval.runner", "agentkit.cli.run"])
def test_the_map_places_known_modules(module: str) -> None:
    assert layer_of(module) == {"agentkit.graphs.mccot": 4, "agentkit.eval.runner": 5, "agentkit.cli.run": 6}[module]
