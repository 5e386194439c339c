"""docs/RESULTS.md's tables, written from the run directories and checked against them.

The page's prose is written by hand; every table in it sits between two markers and is generated:

    <!-- runs: run llamacpp/mccot-gsm8k -->            a run of bench/results.py: its report.md, whose
    ...                                                title is dropped and headings moved two levels
    <!-- /runs -->                                     down (it sits under the page's own headings)
    <!-- runs: linc-variants llamacpp/linc-variants prontoqa -->
    ...                                                bench/linc_variants.py's report for one dataset,
    <!-- /runs -->                                     as it prints it

Paths are relative to the runs root (docs/runs). ``sync`` rewrites every block from its runs;
``stale`` names the blocks that differ from what their runs give, so a test can hold the page to the
numbers the landed runs reproduce.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

_BLOCK = re.compile(r"(<!-- runs: (?P<key>[^>]*?) -->\n)(?P<body>.*?)(<!-- /runs -->)", re.S)


class PageError(ValueError):
    """A marker names no kind of block, or runs that are not there."""


def _demoted(markdown: str) -> str:
    lines = markdown.splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    return "\n".join("##" + line if line.startswith("#") else line for line in lines).strip("\n")


def _run_block(root: Path, run: str) -> str:
    page = root / run / "report.md"
    if not page.is_file():
        raise PageError(f"runs: run {run}: {page} is missing; finish the run (bench/results.py resumes it)")
    return _demoted(page.read_text(encoding="utf-8"))


def block(key: str, root: Path, linc_report: Callable[[Path, list[str]], str]) -> str:
    """The generated text of the block named ``key`` (see the module docstring)."""
    kind, *args = key.split()
    if kind == "run" and len(args) == 1:
        return _run_block(root, args[0])
    if kind == "linc-variants" and len(args) == 2:
        home, dataset = root / args[0], args[1]
        if not (home / dataset).is_dir():
            raise PageError(f"runs: linc-variants: {home / dataset} is missing")
        return linc_report(home, [dataset]).strip("\n")
    raise PageError(f"<!-- runs: {key} -->: use 'run BACKEND/NAME' or 'linc-variants BACKEND/DIR DATASET'")


def keys(page: str) -> list[str]:
    return [m["key"] for m in _BLOCK.finditer(page)]


def sync(page: str, root: Path, linc_report: Callable[[Path, list[str]], str]) -> str:
    """``page`` with every block rewritten from its runs."""
    return _BLOCK.sub(lambda m: f"{m[1]}{block(m['key'], root, linc_report)}\n{m[4]}", page)


def stale(page: str, root: Path, linc_report: Callable[[Path, list[str]], str]) -> list[str]:
    """The keys of the blocks whose text is not what their runs give."""
    return [m["key"] for m in _BLOCK.finditer(page)
            if m["body"] != block(m["key"], root, linc_report) + "\n"]
