"""Which agentkit code a run ran: written to run.json at every start and resume, so a number on a
results page can be traced to a commit (and a run continued across commits shows it).

The package's parts can come from different places: ``agentkit`` from one checkout on PYTHONPATH
while ``agentkit.graphs``, ``.verifiers`` and ``.tools`` (mapped to top-level folders by the
editable install) come from another. Each place is described on its own, so that mix is visible.
"""

from __future__ import annotations

import importlib
import subprocess
from importlib import metadata
from pathlib import Path

_PARTS = ("agentkit", "agentkit.graphs", "agentkit.verifiers", "agentkit.tools")


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10,
                          check=True).stdout.strip()


def _describe(root: Path, folders: list[str]) -> str:
    """``<commit>`` of the checkout at ``root``, ``+dirty`` when these folders differ from it; the
    installed version outside a checkout."""
    try:
        commit = _git(root, "rev-parse", "--short=7", "HEAD")
        dirty = _git(root, "status", "--porcelain", "--untracked-files=no", "--", *folders)
    except (OSError, subprocess.SubprocessError):
        try:
            return f"agentkit {metadata.version('agentkit')}"
        except metadata.PackageNotFoundError:
            return "unknown"
    return commit + ("+dirty" if dirty else "")


def code_version() -> str:
    """One line: the commit every part ran from, or each place's commit and parts when they differ."""
    places: dict[Path, list[str]] = {}
    for name in _PARTS:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        folder = Path(module.__file__ or "").resolve().parent
        places.setdefault(folder.parent, []).append(folder.name)
    described = [(_describe(root, folders), root, folders) for root, folders in places.items()]
    if len(described) == 1:
        return described[0][0]
    return "; ".join(f"{version} ({', '.join(folders)} at {root})" for version, root, folders in described)
