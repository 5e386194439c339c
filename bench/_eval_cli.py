"""The ``agentkit eval`` command line the bench drivers run (linc_variants.py, results.py): one
place for how a run names its directory, backend and endpoints, and resumes once started."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path


def eval_command(pattern: str, dataset: str, limit: int, out_dir: Path, backend: str,
                 base_urls: Sequence[str] | None, options: Sequence[str] = ()) -> list[str]:
    """``agentkit eval PATTERN`` on the first ``limit`` rows into ``out_dir``, with ``--resume`` when
    that directory already holds a started run."""
    command = [sys.executable, "-m", "agentkit", "eval", pattern, "--dataset", dataset, "--limit", str(limit),
               "--out", str(out_dir), "--no-progress", "--backend", backend, *options]
    command += [f"--base-url={url}" for url in base_urls or []]
    if (out_dir / "run.json").exists():
        command.append("--resume")
    return command
