"""Turn summaries into the files a person reads: summary.json, report.md, report.png.

The plot puts every run on one accuracy-vs-cost plane (the trade-off the cascade survey is about),
with bootstrap CI bars so a 2-point gap on 200 examples is not mistaken for a win. matplotlib is
imported lazily and drawn through its Agg canvas directly, so importing agentkit.eval neither needs
a display nor changes the process-wide pyplot backend.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from pydantic import BaseModel, ValidationError

from agentkit.errors import ConfigError
from agentkit.eval.metrics import COST_UNIT, Summary
from agentkit.vocab import first_error

__all__ = ["ReportFiles", "compare", "load_summary", "plot_summaries", "render_markdown", "write_report"]

SUMMARY_FILE = "summary.json"
REPORT_MD = "report.md"
REPORT_PNG = "report.png"


class ReportFiles(BaseModel):
    summary_json: Path
    report_md: Path
    report_png: Path


# --------------------------------------------------------------------------- formatting


def _num(value: float | int | None, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _ci(summary: Summary) -> str:
    if summary.accuracy_ci95 is None:
        return "–"
    lo, hi = summary.accuracy_ci95
    return f"{100 * lo:.1f}–{100 * hi:.1f}%"


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
    ("accuracy 95% CI (bootstrap)", _ci),
    ("balanced accuracy", lambda s: _pct(s.balanced_accuracy)),
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

def _metric(value: object, key: str) -> str:
    """A pattern's own figure, shown as it is named: rates as percentages, numbers rounded, the rest as JSON."""
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return _pct(float(value)) if key.endswith(("_rate", "_share")) else _num(value, 3)


def _rows(summaries: Sequence[Summary]) -> list[tuple[str, Callable[[Summary], str]]]:
    """The fixed rows, then one per ``pattern_metrics`` key any of the summaries has (the pattern's hook)."""
    keys = sorted({k for s in summaries for k in s.pattern_metrics})
    extra = [(f"{k.replace('_', ' ')} (pattern)",
              (lambda s, k=k: _metric(s.pattern_metrics.get(k), k))) for k in keys]
    return [*_ROWS, *extra]


_COMPARE_COLUMNS: list[tuple[str, Callable[[Summary], str]]] = [
    ("n", lambda s: str(s.n)),
    ("accuracy", lambda s: _pct(s.accuracy)),
    ("95% CI", _ci),
    ("bal. acc.", lambda s: _pct(s.balanced_accuracy)),
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


def render_markdown(summary: Summary, *, name: str | None = None,
                    baselines: Mapping[str, Summary] | None = None) -> str:
    """The report.md text: one run's metrics, then the run against its baselines when given."""
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
        parts += ["", _unit_note([summary])]
    parts += ["", "Errors count as wrong answers; cost per success is empty when nothing was correct.", ""]
    return "\n".join(parts)


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
) -> ReportFiles:
    """Write DIR/summary.json, DIR/report.md and DIR/report.png for one run (and its baselines)."""
    out = Path(out_dir)
    files = ReportFiles(summary_json=out / SUMMARY_FILE, report_md=out / REPORT_MD, report_png=out / REPORT_PNG)
    _atomic_write(files.summary_json, lambda fh: fh.write(summary.model_dump_json(indent=2) + "\n"))
    _atomic_write(files.report_md, lambda fh: fh.write(render_markdown(summary, name=name, baselines=baselines)))
    title = name or _run_name(summary)
    plot_summaries({title: summary, **(baselines or {})}, files.report_png,
                   title=f"{title} on {summary.dataset}" if summary.dataset else title)
    return files


def load_summary(path: str | os.PathLike[str]) -> Summary:
    """Read a run's summary.json (pass the run directory or the file itself)."""
    p = Path(path)
    file = p / SUMMARY_FILE if p.is_dir() else p
    if not file.is_file():
        raise ConfigError(f"{file}: no summary.json; is {p} an `agentkit eval --out` directory?")
    try:
        return Summary.model_validate_json(file.read_text(encoding="utf-8"))
    except ValidationError as exc:
        raise ConfigError(f"{file}: not a valid summary ({first_error(exc)}); rerun the evaluation") from None


def compare(dirs: Sequence[str | os.PathLike[str]]) -> str:
    """Markdown side by side of several runs (metrics as rows, runs as columns), for `eval --compare`."""
    if not dirs:
        raise ConfigError("compare needs at least one run directory")
    summaries = [load_summary(d) for d in dirs]
    names: list[str] = []
    for d, s in zip(dirs, summaries, strict=True):
        base = Path(d).name or str(d)
        label = f"{s.pattern} ({base})" if s.pattern and s.pattern != base else base
        while label in names:  # two runs of one pattern: keep columns distinguishable
            label = f"{label} [{len(names) + 1}]"
        names.append(label)
    table = _table(["metric", *names], [[label, *(fmt(s) for s in summaries)] for label, fmt in _rows(summaries)])
    return "\n".join([table, "", _unit_note(summaries), ""])
