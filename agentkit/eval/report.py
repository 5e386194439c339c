"""Turn summaries into the files a person reads: summary.json, report.md, report.png.

The plot puts every run on one accuracy-vs-cost plane (the trade-off the cascade survey is about),
with Wilson CI bars so a 2-point gap on 200 examples is not mistaken for a win; the paired
comparisons (difference, bootstrap CI, exact McNemar p, Holm-adjusted) say which gaps hold up on the
same examples. matplotlib is
imported lazily and drawn through its Agg canvas directly, so importing agentkit.eval neither needs
a display nor changes the process-wide pyplot backend.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from pydantic import BaseModel

from agentkit.errors import ConfigError
from agentkit.eval.comparison import RESULTS_FILE, compare_against_first, run_label
from agentkit.eval.metrics import (
    COST_UNIT,
    NO_PREDICTION,
    OFF_LABEL,
    SUMMARY_FILE,
    Summary,
    load_summary,
)
from agentkit.eval.statistics import Comparison, with_holm

__all__ = ["ReportFiles", "compare", "load_summary", "paired_comparisons", "plot_summaries", "render_markdown",
           "write_report"]
REPORT_MD = "report.md"
REPORT_PNG = "report.png"


class ReportFiles(BaseModel):
    summary_json: Path
    report_md: Path
    report_png: Path


# --------------------------------------------------------------------------- formatting


def _num(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _interval(ci: tuple[float, float] | None) -> str:
    return "–" if ci is None else f"{100 * ci[0]:.1f}–{100 * ci[1]:.1f}%"


def _ci(summary: Summary) -> str:
    text = _interval(summary.accuracy_ci95)
    return text if summary.n_clusters is None or summary.accuracy_ci95 is None else (
        f"{text} ({summary.n_clusters} clusters)")


def _errors(summary: Summary) -> str:
    if not summary.errors_by_type:
        return str(summary.errors)
    kinds = ", ".join(f"{k}: {v}" for k, v in summary.errors_by_type.items())
    return f"{summary.errors} ({kinds})"


def _cost_per_example(summary: Summary) -> float | None:
    return summary.cost / summary.n if summary.n else None


# One row per metric: (label, formatter). Used by the single-run table and by compare().
_ROWS: list[tuple[str, Callable[[Summary], str]]] = [
    ("pattern", lambda s: s.pattern or "–"),
    ("dataset", lambda s: s.dataset or "–"),
    ("examples (n)", lambda s: str(s.n)),
    ("accuracy", lambda s: _pct(s.accuracy)),
    ("accuracy 95% CI (Wilson)", _ci),
    ("balanced accuracy", lambda s: _pct(s.balanced_accuracy)),
    ("balanced accuracy 95% CI (adjusted Wald)", lambda s: _interval(s.balanced_accuracy_ci95)),
    ("errors", _errors),
    ("schema validity", lambda s: _pct(s.schema_validity)),
    ("latency p50 (s)", lambda s: _num(s.latency_p50_s, 2)),
    ("latency p95 (s)", lambda s: _num(s.latency_p95_s, 2)),
    ("input tokens", lambda s: str(s.input_tokens)),
    ("output tokens", lambda s: str(s.output_tokens)),
    ("calls per example", lambda s: _num(s.calls_per_example, 2)),
    ("cost", lambda s: _num(s.cost, 4)),
    ("cost per success", lambda s: _num(s.cost_per_success, 4)),
    ("energy (J)", lambda s: _num(s.energy_j, 2)),
    ("energy per example (J)", lambda s: _num(s.energy_per_example_j, 4)),
]

_PERCENT_KEYS = ("_rate", "_share", "accuracy")


def _metric(value: object, key: str) -> str:
    """A pattern's own figure, shown as it is named: rates and accuracies as percentages, counts as
    integers, other numbers rounded, and mappings (per-tier figures, counted reasons) as ``name
    (figures)`` in the same notation, so a table cell never shows a raw float or raw JSON."""
    if value is None:
        return "–"
    if isinstance(value, Mapping):
        if not value:
            return "none"
        return ", ".join(f"{name} ({_metric(inner, str(name))})" if isinstance(inner, Mapping)
                         else f"{str(name).replace('_', ' ')} {_metric(inner, str(name))}"
                         for name, inner in value.items())
    if isinstance(value, bool) or not isinstance(value, int | float):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    if key.endswith(_PERCENT_KEYS):
        return _pct(float(value))
    return _num(value, 3)


def _rows(summaries: Sequence[Summary]) -> list[tuple[str, Callable[[Summary], str]]]:
    """The fixed rows, then one per ``pattern_metrics`` key any of the summaries has (the pattern's hook)."""
    keys = sorted({k for s in summaries for k in s.pattern_metrics})
    extra = [(f"{k.replace('_', ' ')} (pattern)",
              (lambda s, k=k: _metric(s.pattern_metrics.get(k), k))) for k in keys]
    pooled = [("requests by server", _servers)] if any(s.requests_by_server for s in summaries) else []
    return [*_ROWS, *pooled, *extra]


def _servers(summary: Summary) -> str:
    """Requests each endpoint of a pool answered (a row only when some run used a pool)."""
    if not summary.requests_by_server:
        return "–"
    return ", ".join(f"{url}: {count}" for url, count in summary.requests_by_server.items())


_COMPARE_COLUMNS: list[tuple[str, Callable[[Summary], str]]] = [
    ("n", lambda s: str(s.n)),
    ("accuracy", lambda s: _pct(s.accuracy)),
    ("95% CI (Wilson)", _ci),
    ("bal. acc.", lambda s: _pct(s.balanced_accuracy)),
    ("bal. acc. 95% CI", lambda s: _interval(s.balanced_accuracy_ci95)),
    ("errors", lambda s: str(s.errors)),
    ("schema valid", lambda s: _pct(s.schema_validity)),
    ("p50 s", lambda s: _num(s.latency_p50_s, 2)),
    ("p95 s", lambda s: _num(s.latency_p95_s, 2)),
    ("tokens in/out", lambda s: f"{s.input_tokens}/{s.output_tokens}"),
    ("cost", lambda s: _num(s.cost, 4)),
    ("cost/success", lambda s: _num(s.cost_per_success, 4)),
    ("energy J", lambda s: _num(s.energy_j, 2)),
]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _run_name(summary: Summary, fallback: str = "run") -> str:
    return summary.pattern or fallback


def _unit_note(summaries: Sequence[Summary]) -> str:
    units = {s.cost_unit for s in summaries}
    return f"Cost unit: {units.pop()}." if len(units) == 1 else "Cost units differ between runs: " + "; ".join(
        sorted(units)) + "."


_CI_NOTE = ("Accuracy CIs are Wilson score intervals; with clusters, at the effective sample size from a "
            "cluster-bootstrap design effect. Balanced-accuracy CIs are adjusted Wald intervals (Price & Bonett).")


def _confusion(summary: Summary) -> str:
    """Gold labels as rows, predicted labels as columns; the diagonal sums to the correct count."""
    assert summary.confusion is not None
    golds = list(summary.confusion)
    seen = {p for row in summary.confusion.values() for p in row}
    tail = [p for p in (OFF_LABEL, NO_PREDICTION) if p in seen]
    predicted = [*golds, *sorted(seen - set(golds) - set(tail)), *tail]
    rows = [[gold, *(str(summary.confusion[gold].get(p, 0)) for p in predicted)] for gold in golds]
    return _table(["gold / predicted", *predicted], rows)


def _confusions(runs: Mapping[str, Summary]) -> list[str]:
    parts: list[str] = []
    for name, s in runs.items():
        if s.confusion:
            parts += ["", f"## Confusion matrix: {name}" if len(runs) > 1 else "## Confusion matrix", "",
                      _confusion(s)]
    if parts:
        parts += ["", (f"Rows are gold labels, columns predictions; {NO_PREDICTION} is no prediction or an error, "
                       f"{OFF_LABEL} an answer outside the label set.")]
    return parts


def _p(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.2g}" if value < 0.001 else f"{value:.3f}"


def _signed_interval(ci: tuple[float, float] | None) -> str:
    return "–" if ci is None else f"{100 * ci[0]:+.1f} to {100 * ci[1]:+.1f} pts"


def _comparisons(comparisons: Sequence[Comparison], *, heading: str = "## Paired comparisons") -> list[str]:
    """The paired table, Holm-corrected across exactly the rows shown (one family per call)."""
    if not comparisons:
        return []
    shown = with_holm(comparisons)
    rows = [[c.a, c.b, str(c.n_paired), "–" if c.diff is None else f"{100 * c.diff:+.1f} pts",
             _signed_interval(c.diff_ci95), _p(c.mcnemar_p), _p(c.holm_p), "yes" if c.clustered else "no"]
            for c in shown]
    tests = sum(c.mcnemar_p is not None for c in shown)
    holm_note = (f"a Holm correction was applied across the {tests} McNemar test{'s' if tests != 1 else ''} shown "
                 "(Holm p)" if tests else "with no McNemar test shown there was nothing to Holm-correct")
    note = ("Differences are accuracy of a minus b on the examples both runs finished, with a 95% paired "
            "bootstrap CI (clusters resampled when clustered). p is the exact two-sided McNemar test; "
            f"{holm_note}. Clustered comparisons get no McNemar test (their pairs are not independent).")
    return ["", heading, "",
            _table(["a", "b", "paired n", "diff (a - b)", "95% CI (paired bootstrap)", "McNemar p", "Holm p",
                    "clustered"], rows), "", note]


def render_markdown(summary: Summary, *, name: str | None = None,
                    baselines: Mapping[str, Summary] | None = None,
                    comparisons: Sequence[Comparison] | None = None) -> str:
    """The report.md text: one run's metrics, the run against its baselines and the paired comparisons
    when given, and each labelled run's confusion matrix."""
    title = name or _run_name(summary)
    parts = [f"# agentkit eval: {title}" + (f" on {summary.dataset}" if summary.dataset else ""), ""]
    parts.append(_table(["metric", "value"], [[label, fmt(summary)] for label, fmt in _rows([summary])]))
    if baselines:
        runs = {title: summary, **baselines}
        parts += ["", "## Pattern vs baselines", ""]
        header = ["run", *(c for c, _ in _COMPARE_COLUMNS)]
        parts.append(_table(header, [[run, *(fmt(s) for _, fmt in _COMPARE_COLUMNS)] for run, s in runs.items()]))
        parts += ["", _unit_note(list(runs.values()))]
    else:
        runs = {title: summary}
        parts += ["", _unit_note([summary])]
    parts += ["", _CI_NOTE, "Errors count as wrong answers; cost per success is empty when nothing was correct."]
    parts += _comparisons(comparisons or [])
    parts += _confusions(runs)
    return "\n".join([*parts, ""])


# --------------------------------------------------------------------------- plot


def plot_summaries(runs: Mapping[str, Summary], path: str | os.PathLike[str], *, title: str | None = None) -> Path:
    """Accuracy (with 95% CI bars) against cost per example, one labelled point per run."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.8), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    points = [(name, s, _cost_per_example(s)) for name, s in runs.items() if s.accuracy is not None]
    for name, s, cost in points:
        lo, hi = s.accuracy_ci95 or (s.accuracy, s.accuracy)
        acc = s.accuracy
        ax.errorbar([cost], [acc], yerr=[[max(acc - lo, 0.0)], [max(hi - acc, 0.0)]],
                    fmt="o", capsize=4, label=name)
        ax.annotate(name, (cost, acc), textcoords="offset points", xytext=(6, 6), fontsize=8)
    costs = [c for _, _, c in points if c is not None]
    if costs and min(costs) > 0 and max(costs) / min(costs) > 20:
        ax.set_xscale("log")  # tiers differ by orders of magnitude in size, hence in cost
    if not points:
        ax.text(0.5, 0.5, "no results", ha="center", va="center", transform=ax.transAxes)
    relative = all(s.cost_unit == COST_UNIT for s in runs.values())
    ax.set_xlabel("cost per example" + (" (relative units ∝ model size)" if relative else ""))
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.margins(x=0.15)  # room for the point labels at the edges
    ax.grid(True, alpha=0.3)
    ax.set_title(title or "accuracy vs cost")
    if len(points) > 1:
        ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    out = Path(path)
    _atomic_write(out, lambda fh: fig.savefig(fh, format="png"), binary=True)
    return out


# --------------------------------------------------------------------------- files


def _atomic_write(path: Path, write: Callable[..., object], *, binary: bool = False) -> None:
    """Write via a temp file + rename so a crash never leaves a half-written report behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_report(
    out_dir: str | os.PathLike[str],
    summary: Summary,
    *,
    name: str | None = None,
    baselines: Mapping[str, Summary] | None = None,
    comparisons: Sequence[Comparison] | None = None,
) -> ReportFiles:
    """Write DIR/summary.json, DIR/report.md and DIR/report.png for one run (and its baselines and
    paired comparisons: write those to JSON with ``agentkit.eval.comparison.write_comparisons``)."""
    out = Path(out_dir)
    files = ReportFiles(summary_json=out / SUMMARY_FILE, report_md=out / REPORT_MD, report_png=out / REPORT_PNG)
    _atomic_write(files.summary_json, lambda fh: fh.write(summary.model_dump_json(indent=2) + "\n"))
    _atomic_write(files.report_md, lambda fh: fh.write(render_markdown(summary, name=name, baselines=baselines,
                                                                          comparisons=comparisons)))
    title = name or _run_name(summary)
    plot_summaries({title: summary, **(baselines or {})}, files.report_png,
                   title=f"{title} on {summary.dataset}" if summary.dataset else title)
    return files


def _names(dirs: Sequence[str | os.PathLike[str]], summaries: Sequence[Summary]) -> list[str]:
    names: list[str] = []
    for d, s in zip(dirs, summaries, strict=True):
        label = run_label(d, s.pattern)
        while label in names:  # two runs of one pattern: keep columns distinguishable
            label = f"{label} [{len(names) + 1}]"
        names.append(label)
    return names


def _unpaired(dirs: Sequence[str | os.PathLike[str]]) -> list[int]:
    return [i for i, d in enumerate(dirs) if not (Path(d) / RESULTS_FILE).is_file()]


def paired_comparisons(dirs: Sequence[str | os.PathLike[str]]) -> list[Comparison]:
    """What `eval --compare` pairs: the first run against each other one, named as in ``compare``'s
    columns, Holm-corrected; runs without a results.jsonl (a summary alone) are left out."""
    if len(dirs) < 2:
        return []
    names = _names(dirs, [load_summary(d) for d in dirs])
    skip = set(_unpaired(dirs))
    if 0 in skip:
        return []  # every comparison is against the first run
    keep = [i for i in range(len(dirs)) if i not in skip]
    return compare_against_first([dirs[i] for i in keep], names=[names[i] for i in keep]) if len(keep) > 1 else []


def compare(dirs: Sequence[str | os.PathLike[str]], comparisons: Sequence[Comparison] | None = None) -> str:
    """Markdown side by side of several runs (metrics as rows, runs as columns), for `eval --compare`,
    then the paired comparisons of each run against the first and each labelled run's confusion matrix.

    ``comparisons`` defaults to ``paired_comparisons(dirs)``.
    """
    if not dirs:
        raise ConfigError("compare needs at least one run directory")
    summaries = [load_summary(d) for d in dirs]
    names = _names(dirs, summaries)
    if comparisons is None:
        comparisons = paired_comparisons(dirs)
    table = _table(["metric", *names], [[label, *(fmt(s) for s in summaries)] for label, fmt in _rows(summaries)])
    unpaired = [names[i] for i in _unpaired(dirs)]
    note = [f"No paired comparison for {', '.join(unpaired)}: no {RESULTS_FILE}."] if unpaired and len(dirs) > 1 else []
    parts = [table, "", _unit_note(summaries), "", _CI_NOTE, *note, *_comparisons(comparisons),
             *_confusions(dict(zip(names, summaries, strict=True)))]
    return "\n".join([*parts, ""])
