"""End-to-end tests: real processes (Phoenix, headless Chromium, the real model) talking over loopback."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: starts real servers and a browser; installs what it needs itself")
