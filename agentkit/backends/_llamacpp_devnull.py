"""Keep llama-cpp-python's two /dev/null handles from warning at interpreter exit.

``llama_cpp._utils`` opens /dev/null twice at import (for ``suppress_stdout_stderr``, which
``Llama(verbose=False)`` uses) and never closes them. When the guided-decoding path is used, those
file objects live until the interpreter's last garbage collection, after the warning filters are
gone, so every CLI run ended with two ``ResourceWarning: unclosed file /dev/null`` lines.

They cannot simply be closed early: llama.cpp objects still enter ``suppress_stdout_stderr`` when
they are freed, possibly during finalization. So at exit (after non-daemon threads are joined)
they are swapped for handles on an fd that is deliberately left open (``closefd=False``: no
warning when collected), and the originals are closed.
"""

from __future__ import annotations

import atexit
import os
import threading
from typing import Any

_HANDLES = ("outnull_file", "errnull_file")
_lock = threading.Lock()
_registered = False


def install() -> None:
    """Register the exit-time swap once per process (call after ``llama_cpp`` imported fine)."""
    global _registered
    with _lock:
        if not _registered:
            atexit.register(_swap_and_close)
            _registered = True


def _swap_and_close() -> None:
    try:
        from llama_cpp import _utils
    except ImportError:  # pragma: no cover - install() runs only after llama_cpp imported
        return
    fd = os.open(os.devnull, os.O_WRONLY)
    for name in _HANDLES:
        old: Any = getattr(_utils, name, None)
        if old is None or old.closed:
            continue
        setattr(_utils, name, open(fd, "w", closefd=False))  # noqa: SIM115 - lives until the process ends
        old.close()
