"""The stage contract: where each stage's files live, what they are called, how the processed
splits load, and the data version every run is tagged with. Stages find each other's outputs
through this module only (paths come from `cfg.paths`)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig

from pyfunc.bundle import FILES

SPLITS = ("train", "val", "test")
LABEL_MAPS = FILES["label_maps"]  # the served bundle's files are named by pyfunc.bundle
DATA_REPORT = "data_report.json"
CALIBRATION = FILES["calibration"]
BASELINE = FILES["baseline"]
EVAL_REPORT = "report.md"
BEST_CHECKPOINT = "best.ckpt"


def split_path(cfg: DictConfig, split: str) -> Path:
    return Path(cfg.paths.processed_dir) / f"{split}.parquet"


def artifact(cfg: DictConfig, name: str) -> Path:
    """A file of the export folder (`paths.artifacts_dir`)."""
    return Path(cfg.paths.artifacts_dir) / name


def metrics_file(cfg: DictConfig, model: str) -> Path:
    """`artifacts/metrics/<model>.json` (baseline, multitask, onnx, onnx_int8, hybrid, report)."""
    return Path(cfg.paths.artifacts_dir) / "metrics" / f"{model}.json"


def load_splits(cfg: DictConfig) -> dict[str, pd.DataFrame]:
    from ticketml.io import read_table

    return {s: read_table(split_path(cfg, s)) for s in SPLITS}


def load_label_maps(cfg: DictConfig) -> dict[str, list[str]]:
    from ticketml.io import read_json

    return read_json(artifact(cfg, LABEL_MAPS))


def data_version(cfg: DictConfig) -> str:
    """Short content hash of the processed split (tags every run)."""
    digest = hashlib.sha256()
    for name in SPLITS:
        path = split_path(cfg, name)
        if not path.is_file():
            return "unknown"
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]
