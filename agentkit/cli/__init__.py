"""The ``agentkit`` command: one module per command, each adding itself to ``app``.

Bad input exits with code 2 and one line naming what to fix (see ``_common``).
"""

from __future__ import annotations

import logging
import sys

import typer

from agentkit.cli import eval as _eval
from agentkit.cli import models as _models
from agentkit.cli import resume as _resume
from agentkit.cli import run as _run
from agentkit.cli import serve as _serve
from agentkit.cli import threads as _threads
from agentkit.cli import trace as _trace

__all__ = ["app", "main"]

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Compose small language models into reasoning patterns.")


@app.callback()
def _root() -> None:
    """agentkit: typed graphs of small language models, guided decoding, verifiers and traces."""


for _command in (_run, _resume, _eval, _models, _serve, _trace, _threads):
    _command.register(app)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    app()
