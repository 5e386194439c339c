"""Paired comparisons of finished run directories, and the comparison.json that holds them.

Two runs are paired on the example ids both results.jsonl files hold (each id's last line), so a
run stopped early is compared on what it finished, and two runs over different selections are
compared only where they overlap. The numbers come from ``agentkit.eval.statistics``; this module
only reads the directories and writes the JSON, so every figure in a report can be recomputed
offline from results.jsonl with ``agentkit eval --compare A B --json PATH``.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from agentkit.errors import ConfigError
from agentkit.eval._resultlog import RESULTS_FILE
from agentkit.eval.metrics import load_summary, read_results
from agentkit.eval.statistics import Comparison, paired_comparison, with_holm
from agentkit.vocab import first_error

__all__ = ["COMPARISON_FILE", "Comparison", "compare_against_first", "compare_dirs", "load_comparisons",
           "run_label", "write_comparisons"]

_LOG = logging.getLogger(__name__)

COMPARISON_FILE = "comparison.json"
_LIST = TypeAdapter(list[Comparison])


def run_label(run_dir: str | os.PathLike[str], pattern: str | None) -> str:
    """A run's name in tables: its pattern, plus the directory when that says something more."""
    base = Path(run_dir).name or str(run_dir)
    return f"{pattern} ({base})" if pattern and pattern != base else base


def compare_dirs(a_dir: str | os.PathLike[str], b_dir: str | os.PathLike[str], *, a_name: str | None = None,
                 b_name: str | None = None, ids: Iterable[str] | None = None, resamples: int = 2000,
                 seed: int = 0) -> Comparison:
    """Run ``a_dir`` against ``b_dir`` (diff = accuracy of a - accuracy of b) on the ids both finished.

    ``ids`` restricts the pairing to those examples (e.g. the ones a run selected) but never orders
    it: the pairs always follow a's results file, because the seeded bootstrap's CI depends on the
    order, and ``--baselines`` (which passes its selection) and ``--compare`` (which does not) must
    give the same CI for the same two runs. The names default to each summary's pattern. Rows whose
    results carry a ``cluster`` are resampled by cluster and get no McNemar p-value.
    """
    runs = []
    for run_dir in (a_dir, b_dir):
        summary = load_summary(run_dir)  # also checks it is a run directory at all
        runs.append((summary, read_results(Path(run_dir) / RESULTS_FILE)))
    (sa, ra), (sb, rb) = runs
    if sa.dataset and sb.dataset and sa.dataset != sb.dataset:
        _LOG.warning("comparing runs on different datasets (%s: %s, %s: %s): paired on the ids they share",
                     a_dir, sa.dataset, b_dir, sb.dataset)
    wanted = None if ids is None else set(ids)
    paired = [i for i in ra if i in rb and (wanted is None or i in wanted)]
    clusters = [ra[i].cluster if ra[i].cluster is not None else rb[i].cluster for i in paired]
    return paired_comparison(
        a_name or sa.pattern or Path(a_dir).name, b_name or sb.pattern or Path(b_dir).name,
        [ra[i].succeeded for i in paired], [rb[i].succeeded for i in paired],
        clusters if any(c is not None for c in clusters) else None, resamples=resamples, seed=seed,
    )


def compare_against_first(dirs: Sequence[str | os.PathLike[str]], *, names: Sequence[str] | None = None,
                          resamples: int = 2000, seed: int = 0) -> list[Comparison]:
    """The first run against each of the others, Holm-corrected across exactly these comparisons.

    ``names`` (one per directory) defaults to ``run_label`` of each; ``--compare A B C`` reports these.
    """
    if names is None:
        names = [run_label(d, load_summary(d).pattern) for d in dirs]
    if len(names) != len(dirs):
        raise ConfigError(f"{len(names)} names for {len(dirs)} run directories")
    return with_holm([compare_dirs(dirs[0], d, a_name=names[0], b_name=name, resamples=resamples, seed=seed)
                      for d, name in zip(dirs[1:], names[1:], strict=True)])


def write_comparisons(path: str | os.PathLike[str], comparisons: Sequence[Comparison]) -> Path:
    """Write the list as JSON (atomically: a crash never leaves half a file) and return the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps([c.model_dump(mode="json") for c in comparisons], indent=2) + "\n"
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def load_comparisons(path: str | os.PathLike[str]) -> list[Comparison]:
    """Read a comparison.json (pass the file, or the run directory holding one)."""
    p = Path(path)
    file = p / COMPARISON_FILE if p.is_dir() else p
    try:
        return _LIST.validate_json(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read it ({exc.strerror}); write it with `agentkit eval --compare "
                          "A B --json PATH`") from None
    except ValidationError as exc:
        raise ConfigError(f"{file}: not a comparison list ({first_error(exc)}); rewrite it with "
                          "`agentkit eval --compare A B --json PATH`") from None
