"""Backends sit low in the layers (tests/unit/test_architecture.py checks the imports), and importing
the package loads no engine (llama.cpp, vLLM) until a kind is actually built."""

from __future__ import annotations

import subprocess
import sys

import agentkit.backends
from agentkit import decoding
from agentkit.backends._grammar_cache import GrammarCache


def test_grammar_cache_keeps_its_old_import_path() -> None:
    assert decoding.GrammarCache is GrammarCache


def test_importing_backends_loads_no_engine() -> None:
    code = (
        "import sys, agentkit.backends as b; b.backend_kinds(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('llama_cpp', 'vllm', 'outlines') "
        "or m in ('agentkit.backends.llamacpp', 'agentkit.backends.vllm_engine', 'agentkit.backends.vllm_server')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]"


def test_backend_kinds_alias_follows_the_table() -> None:
    assert agentkit.backends.BACKEND_KINDS == tuple(agentkit.backends.backend_kinds())
    assert agentkit.backends.BACKEND_KINDS[:3] == ("llamacpp", "vllm", "openai")
