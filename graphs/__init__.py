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

    def load(self) -> ModuleType:
        return importlib.import_module(self.module)


PATTERNS: dict[str, PatternSpec] = {
    "mccot": PatternSpec("mccot", "agentkit.graphs.mccot", "Question", "k"),
}


def get_pattern(name: str) -> PatternSpec:
    try:
        return PATTERNS[name]
    except KeyError:
        raise ConfigError(f"unknown pattern {name!r}; choose one of: {', '.join(sorted(PATTERNS))}") from None
