"""The reasoning patterns, one module each, importable as ``agentkit.graphs.<name>``.

Each module exports its ``agentkit.pattern.Pattern`` object(s) in ``PATTERNS``; this package
registers the built-in modules listed in ``_BUILTIN`` when a pattern is first looked up, so
``import agentkit.graphs`` stays cheap. A pattern of your own registers with ``register_pattern``
and is then driven by ``agentkit run``/``agentkit eval`` like the built-ins.
"""

from __future__ import annotations

import importlib

from agentkit.errors import ConfigError
from agentkit.pattern import Pattern

__all__ = ["Pattern", "get_pattern", "pattern_names", "patterns", "register_pattern", "unregister_pattern"]

#: The built-in pattern modules, in the order the CLI lists them. Adding a pattern: one entry here.
_BUILTIN: tuple[str, ...] = ("mccot", "daslam", "maj", "linc", "cascade", "baselines")

_registry: dict[str, Pattern] = {}
_loaded = False


def _load_builtins() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in _BUILTIN:
        for pattern in importlib.import_module(f"agentkit.graphs.{module}").PATTERNS:
            _registry.setdefault(pattern.name, pattern)


def register_pattern(pattern: Pattern, *, replace: bool = False) -> Pattern:
    """Make ``pattern`` available by name to ``get_pattern``, the CLI and the eval harness."""
    if not isinstance(pattern, Pattern):
        raise ConfigError(f"register_pattern takes an agentkit.pattern.Pattern, got {type(pattern).__name__}")
    _load_builtins()
    if pattern.name in _registry and not replace and _registry[pattern.name] is not pattern:
        raise ConfigError(f"a pattern named {pattern.name!r} is already registered; pick another name "
                          "or pass replace=True")
    _registry[pattern.name] = pattern
    return pattern


def unregister_pattern(name: str) -> None:
    """Remove a pattern registered with ``register_pattern`` (a plugin unloading, a test cleaning up)."""
    _load_builtins()
    if _registry.pop(name, None) is None:
        raise ConfigError(f"no pattern named {name!r} is registered")


def patterns() -> dict[str, Pattern]:
    """Every registered pattern by name: the built-ins first, then those registered since."""
    _load_builtins()
    return dict(_registry)


def pattern_names() -> tuple[str, ...]:
    return tuple(patterns())


def get_pattern(name: str) -> Pattern:
    try:
        return patterns()[name]
    except KeyError:
        raise ConfigError(f"unknown pattern {name!r}; choose one of: {', '.join(pattern_names())}") from None
