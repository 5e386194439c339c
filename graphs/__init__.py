"""The reasoning patterns, one module each, importable as ``agentkit.graphs.<name>``.

``PATTERNS`` lists what ``agentkit run`` and ``agentkit eval`` can drive: each entry names the
module, the input model it takes and the knob that ``--samples`` sets.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from agentkit.errors import ConfigError


@dataclass(frozen=True)
class PatternSpec:
    name: str
    module: str
    input_type: str
    samples_knob: str | None
    builder: str = "build"  # the module function that builds the graph (baselines has two)

    def load(self) -> ModuleType:
        return importlib.import_module(self.module)


PATTERNS: dict[str, PatternSpec] = {
    "mccot": PatternSpec("mccot", "agentkit.graphs.mccot", "Question", "k"),
    "direct": PatternSpec("direct", "agentkit.graphs.baselines", "Question", None, "build_direct"),
    "cot": PatternSpec("cot", "agentkit.graphs.baselines", "Question", None, "build_cot"),
    "daslam": PatternSpec("daslam", "agentkit.graphs.daslam", "Question", None),
    "maj": PatternSpec("maj", "agentkit.graphs.maj", "JudgeInput", "samples"),
    "linc": PatternSpec("linc", "agentkit.graphs.linc", "LogicProblem", "k"),
    "cascade": PatternSpec("cascade", "agentkit.graphs.cascade", "Question", "k"),
}


def get_pattern(name: str) -> PatternSpec:
    try:
        return PATTERNS[name]
    except KeyError:
        raise ConfigError(f"unknown pattern {name!r}; choose one of: {', '.join(sorted(PATTERNS))}") from None
