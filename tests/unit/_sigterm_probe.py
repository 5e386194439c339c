"""Run by test_sigterm_teardown in a child pytest: a session fixture whose teardown leaves a mark."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def server_like() -> Iterator[None]:
    yield
    Path(os.environ["SIGTERM_PROBE_MARK"]).write_text("torn down")


def test_waits_for_the_signal(server_like: None) -> None:
    Path(os.environ["SIGTERM_PROBE_MARK"] + ".running").touch()
    time.sleep(60)
