"""Evaluation: datasets in, per-example results, summary metrics and reports out."""

from agentkit.eval.datasets import (
    DATASET_NAMES,
    DatasetError,
    Example,
    dev_test_split,
    label_set,
    load_dataset,
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
from agentkit.eval.report import (
    ReportFiles,
    compare,
    load_summary,
    plot_summaries,
    render_markdown,
    write_report,
)

__all__ = [
    "COST_UNIT",
    "DATASET_NAMES",
    "DatasetError",
    "EnergyTable",
    "Example",
    "ExampleResult",
    "ModelUsage",
    "Prices",
    "ReportFiles",
    "ResultsError",
    "Summary",
    "Usage",
    "compare",
    "dev_test_split",
    "example_cost",
    "example_energy",
    "label_set",
    "load_dataset",
    "load_summary",
    "plot_summaries",
    "read_results",
    "render_markdown",
    "summarize",
    "write_report",
]
