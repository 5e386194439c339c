"""results.jsonl as an append-only, crash-safe log: one whole line per finished example.

A run can be killed at any instant. Each line is written with one buffered ``os.write`` loop,
then fsync'd, before the example counts as finished; so after a kill the file holds every line
that was reported finished, plus at most one partial line at the end. Opening the log repairs that
tail before anything is appended -- otherwise the next line would be glued to the fragment and
both would be lost: a tail that parses (only its newline was missing) is kept and completed, a
fragment that does not is cut off, and its example simply runs again.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from pydantic import ValidationError

from agentkit.eval.metrics import ExampleResult, read_results

_LOG = logging.getLogger(__name__)

RESULTS_FILE = "results.jsonl"


def _repair_tail(path: Path) -> None:
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return
    cut = data.rfind(b"\n") + 1  # 0 when the whole file is one partial line
    tail = data[cut:]
    try:
        ExampleResult.model_validate(json.loads(tail.decode("utf-8")))
    except (UnicodeDecodeError, json.JSONDecodeError, ValidationError):
        _LOG.warning("%s: dropping a partial last line (%d bytes) left by an interrupted write; "
                     "that example will run again", path, len(tail))
        with path.open("r+b") as fh:
            fh.truncate(cut)
            fh.flush()
            os.fsync(fh.fileno())
        return
    with path.open("ab") as fh:  # the line was whole; only its newline was lost
        fh.write(b"\n")
        fh.flush()
        os.fsync(fh.fileno())


class ResultLog:
    """Append ExampleResults to DIR/results.jsonl; ``finished`` maps id -> last result."""

    def __init__(self, out_dir: str | os.PathLike[str]) -> None:
        self.path = Path(out_dir) / RESULTS_FILE
        self.finished: dict[str, ExampleResult] = {}
        if self.path.exists():
            _repair_tail(self.path)
            self.finished = read_results(self.path)
        self._fd: int | None = None

    def __enter__(self) -> ResultLog:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def append(self, result: ExampleResult) -> None:
        """Write one whole line and fsync it: when this returns, the example survives a kill."""
        if self._fd is None:
            raise RuntimeError("ResultLog.append outside its with-block")
        line = (result.model_dump_json() + "\n").encode("utf-8")
        view = memoryview(line)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        os.fsync(self._fd)
        self.finished.pop(result.id, None)
        self.finished[result.id] = result
