"""End-to-end tests: real processes (Phoenix, headless Chromium, the real model) talking over loopback."""

from __future__ import annotations

import pytest

from tests import _prewarm

#: Phoenix's venv and Chromium may still be installing in the background (tests/_prewarm.py)
INSTALL_TIMEOUT_S = 2400


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: starts real servers and a browser; installs what it needs itself")


@pytest.fixture(scope="session", autouse=True)
def _background_installs() -> None:
    """Wait for the background installs before the suite's own fixtures look for Phoenix and
    Chromium (a second apt-get would fail on dpkg's lock). A failed Phoenix install is raised here;
    a failed Chromium install is left to the suite's ``chromium`` fixture, which tries again and
    reports apt-get's error."""
    _prewarm.JOBS.wait("phoenix", INSTALL_TIMEOUT_S)
    try:
        _prewarm.JOBS.wait("chromium", INSTALL_TIMEOUT_S)
    except Exception:  # noqa: BLE001 - reported by the chromium fixture's own attempt
        pass
