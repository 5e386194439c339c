"""The eval progress bar: done/total, accuracy so far, output tokens per second, ETA.

rich's stock columns cover the bar, counts and time; accuracy and throughput are two small custom
columns reading fields the runner updates after each example. The bar draws on stderr so stdout
stays clean for anything a script pipes on.

Redrawing is what costs: rich renders the whole bar as a table, about 3 ms of CPU per frame here,
so its default 10 frames a second took 30-40 ms of CPU every second from the eval it reports on
(about 1 ms per request at 30 requests/s). Two frames a second keep the seconds clock ticking, and
a finished example shows within half a second. Where stderr is not a terminal (a log file, a pipe)
rich draws nothing until the end, so the frames were pure cost: there the bar only draws once, when
it stops.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from agentkit.eval.metrics import ExampleResult

#: frames a second on a terminal (rich's default is 10; see the module docstring for the cost)
REFRESH_PER_SECOND = 2.0


class _AccuracyColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        scored = task.fields.get("scored", 0)
        if not scored:
            return Text("acc –", style="progress.percentage")
        return Text(f"acc {100 * task.fields['correct'] / scored:.1f}%", style="progress.percentage")


class _TokensPerSecondColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        tokens = task.fields.get("tokens", 0)
        rate = tokens / elapsed if elapsed > 0 else 0.0
        return Text(f"{rate:.1f} tok/s", style="progress.data.speed")


class EvalProgress:
    """Context manager; ``update(result)`` after each written example. Disabled: does nothing."""

    def __init__(self, total: int, description: str, *, enabled: bool = True, console: Console | None = None) -> None:
        console = console or Console(stderr=True)
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            _AccuracyColumn(),
            TextColumn("err {task.fields[errors]}"),
            _TokensPerSecondColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            disable=not enabled,
            transient=False,
            auto_refresh=console.is_terminal or console.is_jupyter,
            refresh_per_second=REFRESH_PER_SECOND,
        )
        self._task: TaskID = self._progress.add_task(
            description, total=total, start=False, correct=0, scored=0, errors=0, tokens=0
        )

    def __enter__(self) -> EvalProgress:
        self._progress.start()
        self._progress.start_task(self._task)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._progress.stop()

    def update(self, result: ExampleResult) -> None:
        fields = self._progress.tasks[0].fields
        self._progress.update(
            self._task,
            advance=1,
            correct=fields["correct"] + int(result.succeeded),
            scored=fields["scored"] + 1,
            errors=fields["errors"] + int(result.failed_with_error),
            tokens=fields["tokens"] + result.usage.output_tokens,
        )
