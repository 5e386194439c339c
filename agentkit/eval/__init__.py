"""Evaluation: datasets in, per-example results, summary metrics and reports out.

``evaluate(pattern, select_dataset(name), backend, out_dir)`` is the one-call entry point (what
``agentkit eval`` runs); the runner lives in ``agentkit.eval.runner``.
"""

from agentkit.eval._ray_spec import BackendSpec, RayOptions
from agentkit.eval.comparison import (
    Comparison,
    compare_against_first,
    compare_dirs,
    load_comparisons,
    write_comparisons,
)
from agentkit.eval.datasets import (
    DATASET_NAMES,
    DatasetError,
    DatasetSpec,
    Example,
    answer_kind,
    dataset_names,
    dataset_spec,
    dev_test_split,
    label_set,
    load_dataset,
    register_dataset,
    unregister_dataset,
)
from agentkit.eval.metrics import (
    COST_UNIT,
    EnergyTable,
    ExampleResult,
    ModelUsage,
    Prices,
    ResultsError,
    Summary,
    Usage,
    example_cost,
    example_energy,
    read_results,
    summarize,
)
from agentkit.eval.questions import question_text
from agentkit.eval.report import (
    ReportFiles,
    compare,
    load_summary,
    plot_summaries,
    render_markdown,
    write_report,
)
from agentkit.eval.runner import (
    EvalDataset,
    EvalOutcome,
    RunManifest,
    aevaluate,
    evaluate,
    select_dataset,
)
from agentkit.eval.scoring import grade

__all__ = [
    "COST_UNIT",
    "DATASET_NAMES",
    "BackendSpec",
    "Comparison",
    "DatasetError",
    "DatasetSpec",
    "EnergyTable",
    "EvalDataset",
    "EvalOutcome",
    "Example",
    "ExampleResult",
    "ModelUsage",
    "Prices",
    "RayOptions",
    "ReportFiles",
    "ResultsError",
    "RunManifest",
    "Summary",
    "Usage",
    "aevaluate",
    "answer_kind",
    "compare",
    "compare_against_first",
    "compare_dirs",
    "dataset_names",
    "dataset_spec",
    "dev_test_split",
    "evaluate",
    "example_cost",
    "example_energy",
    "grade",
    "label_set",
    "load_comparisons",
    "load_dataset",
    "load_summary",
    "plot_summaries",
    "question_text",
    "read_results",
    "register_dataset",
    "render_markdown",
    "select_dataset",
    "summarize",
    "unregister_dataset",
    "write_comparisons",
    "write_report",
]
