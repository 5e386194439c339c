"""docs/RESULTS.md's tables, written from the run directories and checked against them.

The page's prose is written by hand; every table in it sits between two markers and is generated:

    <!-- runs: run llamacpp/mccot-gsm8k -->            a run of bench/results.py: its report.md, whose
    ...                                                title is dropped and headings moved two levels
    <!-- /runs -->                                     down (it sits under the page's own headings)
    <!-- runs: linc-variants llamacpp/linc-variants prontoqa -->
    ...                                                bench/linc_variants.py's report for one dataset,
    <!-- /runs -->                                     as it prints it

Paths are relative to the runs root (docs/runs). ``sync`` rewrites every block from its runs;
``stale`` says which blocks differ from what their runs give, and which runs' comparison.json no
longer recomputes from their results.jsonl (what ``agentkit eval --compare`` would print), so the
page can be held to numbers the landed runs reproduce.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from agentkit.errors import ConfigError
from agentkit.eval.comparison import compare_dirs, load_comparisons
from agentkit.eval.statistics import with_holm

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
            raise PageError(f"runs: linc-variants: {home / dataset} is missing; run bench/linc_variants.py "
                            f"--out {home} --datasets {dataset}")
        return linc_report(home, [dataset]).strip("\n")
    raise PageError(f"<!-- runs: {key} -->: use 'run BACKEND/NAME' or 'linc-variants BACKEND/DIR DATASET'")


def sync(page: str, root: Path, linc_report: Callable[[Path, list[str]], str]) -> str:
    """``page`` with every block rewritten from its runs."""
    return _BLOCK.sub(lambda m: f"{m[1]}{block(m['key'], root, linc_report)}\n{m[4]}", page)


def unreproduced(run_dir: Path) -> list[str]:
    """The pairs of ``run_dir``'s comparison.json that its results no longer give: each is recomputed
    from the run's and its baseline's results.jsonl (baseline ``b`` lives in ``baseline-<pattern>``)."""
    try:
        stored = load_comparisons(run_dir)
        fresh = with_holm([compare_dirs(run_dir, run_dir / f"baseline-{c.b.split(' ')[0]}", a_name=c.a, b_name=c.b)
                           for c in stored])
    except ConfigError as exc:
        return [str(exc)]
    return [f"{old.a} vs {old.b}" for old, new in zip(stored, fresh, strict=True) if old != new]


def stale(page: str, root: Path, linc_report: Callable[[Path, list[str]], str]) -> list[str]:
    """What is out of date, one line each: a block whose text is not what its runs give, and a run
    whose paired comparisons do not recompute from its results."""
    found = []
    for m in _BLOCK.finditer(page):
        key = m["key"]
        if m["body"] != block(key, root, linc_report) + "\n":
            found.append(f"{key}: the table differs from its runs")
        kind, *args = key.split()
        if kind == "run":
            found += [f"{key}: comparison.json does not recompute: {why}" for why in unreproduced(root / args[0])]
    return found
