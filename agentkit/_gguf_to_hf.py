"""Dequantize a GGUF model into an HF-format directory (safetensors + tokenizer) that vLLM loads.

Runs as a standalone script in the vLLM venv (it needs torch, transformers, gguf and accelerate,
which agentkit's own environment does not carry), so it imports nothing from agentkit:

    python _gguf_to_hf.py MODEL.gguf OUT_DIR [--dtype bfloat16]

transformers records the GGUF quantization in ``config.quantization_config`` (and refuses to save a
model with a GGUF quantizer attached); vLLM would then try to load the dense weights as GGUF blocks,
so both are dropped before saving. The chat template is copied from the GGUF metadata when the converted tokenizer
lacks it, because vLLM's chat endpoint cannot format messages without one.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

_log = logging.getLogger("agentkit.gguf_to_hf")


def _chat_template_from_gguf(path: Path) -> str | None:
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    field = reader.fields.get("tokenizer.chat_template")
    if field is None:
        return None
    return bytes(field.parts[field.data[0]]).decode("utf-8")


def convert(gguf_path: Path, out_dir: Path, dtype: str) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    # transformers >= 5 keeps GGUF weights packed unless told to unpack them into dense tensors
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf_path.parent),
        gguf_file=gguf_path.name,
        dtype=getattr(torch, dtype),
        quantization_config=GgufConfig(dequantize=True),
    )
    model.hf_quantizer = None  # the weights are dense now; the quantizer would refuse to save them
    for holder in (model.config, getattr(model, "generation_config", None)):
        if holder is not None and hasattr(holder, "quantization_config"):
            delattr(holder, "quantization_config")
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = _chat_template_from_gguf(gguf_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(out_dir))
    config_path = out_dir / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if config.pop("quantization_config", None) is not None:
        config_path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gguf", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    args = parser.parse_args(argv)
    if not args.gguf.is_file():
        sys.stderr.write(f"error: GGUF file not found: {args.gguf}\n")
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    convert(args.gguf, args.out, args.dtype)
    _log.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
