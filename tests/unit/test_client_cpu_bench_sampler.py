"""bench/scale.py's CPU sampler: without Ray it reads only its own process (no /proc walk holding the
GIL 20 times a second); with children it still finds a child's CPU."""

from __future__ import annotations

import subprocess
import sys
import time
from types import ModuleType

import pytest

from tests.helpers import bench_module


def _scale() -> ModuleType:
    return bench_module("scale")


def _burn(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_without_children_it_never_walks_proc(monkeypatch: pytest.MonkeyPatch) -> None:
    scale = _scale()

    def walk(self: object) -> dict[int, tuple[bool, float]]:
        raise AssertionError("walked /proc")

    monkeypatch.setattr(scale._CPUSampler, "_descendants", walk)
    with scale._CPUSampler(exclude=-1, every_s=0.01, children=False) as cpu:
        _burn(0.2)
    assert len(cpu.samples) >= 2
    own, workers, daemons = (b - a for a, b in zip(cpu.at(cpu.samples[0][0]), cpu.at(cpu.samples[-1][0]),
                                                   strict=True))
    assert own >= 0.15  # this thread's burn is the client's
    assert workers == daemons == 0.0


def test_with_children_it_counts_a_child_process() -> None:
    scale = _scale()
    burner = "import time\nend = time.process_time() + 0.5\nwhile time.process_time() < end: pass\n"
    with scale._CPUSampler(exclude=-1, every_s=0.02, children=True) as cpu:
        subprocess.run([sys.executable, "-c", burner], check=True)
    _, _, daemons = cpu.at(cpu.samples[-1][0])
    assert daemons >= 0.3  # not a Ray worker ("ray::" name), so it counts with the other children
