"""What ``agentkit eval PATTERN --baselines`` runs beside the pattern, and how each is made fair.

- ``direct`` and ``cot``: one greedy call each.
- ``sc``: self-consistency at the pattern's budget. K comes from the pattern's finished run, not
  from its knobs, because calls per example vary with the example (DaSLaM's sub-questions, MAJ's
  rounds, a cascade's escalations): K = ceil(mean ``extra["samples"]`` per finished example), the
  samples the runner counted. The temperature is the pattern's when above 0, else 0.8. K and its
  derivation are sc's knobs (``k``, ``budget`` in run.json) and its row name in the report. sc is
  skipped, and said so, when K < 2: a one-sample vote is the cot baseline, sampled.
- ``majority-label`` (labelled sets): the most frequent label of a ``train`` or ``dev`` split other
  than the scored one; with none, of the scored rows themselves, and the row is marked "oracle".
- a cascade also runs each tier alone (``tier-<name>``, from ``agentkit.graphs.cascade``).

Then DIR/comparison.json holds the pattern against each baseline, paired on the selected ids both
finished, Holm-corrected across those comparisons (``agentkit.eval.comparison``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from agentkit.cli._common import pattern_knobs
from agentkit.errors import ConfigError
from agentkit.eval.comparison import COMPARISON_FILE, compare_dirs, write_comparisons
from agentkit.eval.datasets import dataset_spec, load_dataset
from agentkit.eval.metrics import ExampleResult, read_results
from agentkit.eval.runner import (
    MANIFEST_FILE,
    RESULTS_FILE,
    EvalDataset,
    EvalOutcome,
    dataset_knobs,
)
from agentkit.eval.statistics import Comparison, with_holm
from agentkit.graphs import cascade, get_pattern
from agentkit.graphs.baselines import SC_TEMPERATURE, majority_label
from agentkit.pattern import Pattern

__all__ = ["BASELINES", "Planned", "baseline_dir", "fill_knobs", "identity", "majority_label_knobs", "plan",
           "sc_budget", "settle_sc", "write_comparison"]

BASELINES = ("direct", "cot", "sc", "majority-label")

#: splits a majority label may be counted on, in order of preference (never the scored split)
_LABEL_SPLITS = ("train", "dev")


@dataclass(frozen=True)
class Planned:
    """One run of the command: its pattern, directory, knobs (None until known) and report row name."""

    pattern: Pattern
    out_dir: Path
    knobs: dict[str, Any] | None
    label: str


def baseline_dir(out: Path, name: str) -> Path:
    return out / f"baseline-{name}"


def identity(run: Planned, data: EvalDataset) -> dict[str, Any]:
    """What ``check_out_dir`` compares; knobs only once known (sc's K waits for the pattern's run)."""
    ident = {"pattern": run.pattern.name, "dataset": data.name, "answer_kind": data.answer_kind,
             "field_map": data.field_map, "dataset_sha256": data.sha256}
    return ident if run.knobs is None else {**ident, "knobs": run.knobs}


def _labelled(data: EvalDataset) -> bool:
    return data.answer_kind == "label" and bool(data.labels)


def majority_label_knobs(data: EvalDataset) -> dict[str, Any]:
    """``label`` and ``source`` for majority-label: counted on a train/dev split that is not the one
    scored when the named set has one, else on the scored rows (``source="oracle"``)."""
    try:
        spec = dataset_spec(data.name)
    except ConfigError:  # a file: only its own rows
        spec = None
    for split in _LABEL_SPLITS:
        if spec is not None and split in spec.splits and split != spec.default_split:
            rows = load_dataset(spec.name, split=split)
            return {"label": majority_label(e.label for e in rows), "source": split}
    return {"label": majority_label(e.label for e in data.examples), "source": "oracle"}


def fill_knobs(pattern: Pattern, data: EvalDataset, knobs: Mapping[str, Any]) -> dict[str, Any]:
    """The knobs a baseline needs from the dataset when it is the pattern evaluated (the caller's win)."""
    if pattern.name == "majority-label" and "label" not in knobs:
        return {**majority_label_knobs(data), **knobs}
    return dict(knobs)


def plan(pattern: Pattern, data: EvalDataset, out: Path, knobs: Mapping[str, Any]) -> list[Planned]:
    """The baseline runs for ``pattern`` (run with ``knobs``) on ``data``; sc's knobs stay None until
    ``settle_sc``. Baselines get the pattern's seed when it was given one, else their defaults."""
    seed = knobs.get("seed")
    runs = []
    for name in BASELINES:
        if name == pattern.name or (name == "majority-label" and not _labelled(data)):
            continue
        base = get_pattern(name)
        own = fill_knobs(base, data, pattern_knobs(base, samples=None, seed=seed, options=[]))
        checked = base.check_knobs({**dataset_knobs(base, data), **own})
        label = f"majority-label ({own['source']})" if name == "majority-label" else name
        runs.append(Planned(base, baseline_dir(out, name), None if name == "sc" else checked, label))
    if pattern.name == cascade.PATTERN.name:
        for tier, tier_knobs in cascade.tier_patterns(knobs):
            checked = tier.check_knobs({**dataset_knobs(tier, data), **tier_knobs})
            runs.append(Planned(tier, baseline_dir(out, tier.name), checked, tier.name))
    return runs


def sc_budget(results: Iterable[ExampleResult], pattern: str) -> tuple[int, dict[str, Any]] | None:
    """(K, how K was derived) from a finished run: K = ceil(mean samples per example); None when no
    result recorded its samples."""
    counts = [r.extra["samples"] for r in results
              if isinstance(r.extra.get("samples"), int) and not isinstance(r.extra.get("samples"), bool)]
    if not counts:
        return None
    mean = Fraction(sum(counts), len(counts))
    return math.ceil(mean), {"pattern": pattern, "rule": "ceil(mean samples per example)",
                             "mean_samples": round(float(mean), 4), "examples": len(counts)}


def _sc_temperature(pattern: Pattern, knobs: Mapping[str, Any]) -> float:
    knob = pattern.knobs.get("temperature")
    value = knobs.get("temperature", knob.default if knob is not None else None)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) and value > 0 \
        else SC_TEMPERATURE


def _stored_knobs(run_dir: Path) -> dict[str, Any] | None:
    manifest, results = run_dir / MANIFEST_FILE, run_dir / RESULTS_FILE
    if not (manifest.is_file() and results.is_file() and results.stat().st_size > 0):
        return None
    try:
        knobs = json.loads(manifest.read_text(encoding="utf-8")).get("knobs")
    except (OSError, ValueError, AttributeError):
        return None  # the runner's own check names the unreadable file
    return knobs if isinstance(knobs, dict) else None


def settle_sc(run: Planned, pattern: Pattern, knobs: Mapping[str, Any], out: Path, data: EvalDataset, *,
              resume: bool) -> tuple[Planned | None, str]:
    """sc's knobs from the pattern's finished results in ``out`` (the selected examples only), or None
    and why it is skipped. On --resume, an sc run made at the same K keeps its recorded derivation
    (its knobs must match to continue); one made at another K is refused, naming both."""
    finished = read_results(out / RESULTS_FILE) if (out / RESULTS_FILE).is_file() else {}
    derived = sc_budget((finished[e.id] for e in data.examples if e.id in finished), pattern.name)
    if derived is None:
        return None, f"sc skipped: {pattern.name} finished no example that recorded its samples"
    k, budget = derived
    if k < 2:
        return None, (f"sc skipped: {pattern.name} used {budget['mean_samples']:g} samples per example, so a "
                      f"budget-matched vote would have K={k}: no vote at all (the cot baseline is the one call)")
    base = run.pattern
    own = pattern_knobs(base, samples=None, seed=knobs.get("seed"), options=[])
    settled = base.check_knobs({**dataset_knobs(base, data), **own, "k": k,
                                "temperature": _sc_temperature(pattern, knobs), "budget": budget})
    stored = _stored_knobs(run.out_dir) if resume else None
    if stored is not None and stored.get("k") != k:
        raise ConfigError(f"--resume: {run.out_dir} ran sc with K={stored.get('k')}, but {pattern.name}'s finished "
                          f"results now give K={k} ({budget['mean_samples']} samples per example); delete "
                          f"{run.out_dir} to rerun sc at the new budget")
    if stored is not None and isinstance(stored.get("budget"), dict):
        settled["budget"] = stored["budget"]  # the derivation that set K when this sc run started
    label = f"sc (K={k}: ceil of {budget['mean_samples']:g} samples/example of {pattern.name})"
    return replace(run, knobs=settled, label=label), ""


def write_comparison(out: Path, name: str, runs: Sequence[tuple[Planned, EvalOutcome]],
                     data: EvalDataset) -> list[Comparison]:
    """DIR/comparison.json: the pattern (``a``) against each baseline (``b``, its report row name),
    on the selected ids both finished, Holm-corrected across these comparisons."""
    ids = [e.id for e in data.examples]
    comparisons = with_holm([compare_dirs(out, run.out_dir, a_name=name, b_name=run.label, ids=ids)
                             for run, _ in runs])
    write_comparisons(out / COMPARISON_FILE, comparisons)
    return comparisons
