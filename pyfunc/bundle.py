"""The served-model bundle: the one owner of its file names, of which files it is, and of how it is
written and read (numpy/json only: the serving core imports it without torch).

An export folder (`artifacts/`) holds a bundle among training outputs: `export_onnx` stages the
files and `publish`es them, writing into model_config.json the list of exactly the files the
served model needs ("files"); `load` reads a bundle back (what `TicketClassifier`, `evaluate`,
`infer`, the API and the registered pyfunc model all go through) and `copy_served` copies only
those files (what `register` logs as the model's one artifact, and what the Dockerfile bakes
into the API image). Adding a file to the served model is a line in FILES here, beside the code
that writes it (export) and reads it (the core); nothing else lists the bundle's files.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

ONNX_FP32 = "model.onnx"
ONNX_INT8 = "model.int8.onnx"
GRAPHS = (ONNX_FP32, ONNX_INT8)
# role -> file name, beside the graph. Required: every model; optional: where the export made it
# (calibration: a model trained without validation rows has none; baseline + hybrid: a hybrid)
FILES = {
    "tokenizer": "tokenizer.json",
    "label_maps": "label_maps.json",
    "model_config": "model_config.json",
    "calibration": "calibration.json",
    "baseline": "baseline.npz",
    "hybrid": "hybrid.json",
    "neighbours": "neighbours.npz",
    "smoke": "smoke.json",
}
REQUIRED = ("tokenizer", "label_maps", "model_config")
# smoke: made-up tickets and the labels the exported model gave them (those it was sure of are
# checked): a load that answers them differently is refused (damaged or mismatched files)
# neighbours: the training tickets' index, where the hybrid's pool weighs their votes
OPTIONAL = ("calibration", "baseline", "hybrid", "neighbours", "smoke")
HYBRID_FILES = ("baseline", "hybrid")
EXPORTED = (
    "baseline",
    "hybrid",
    "neighbours",
    "smoke",
    "model_config",
)  # export_onnx writes these; train the rest
ARTIFACT = "bundle"  # the registered pyfunc model's one artifact: a folder holding the bundle


def registered_path(role: str) -> str:
    """Where a bundle file lies inside a registered version (`models:/name/N/<this>`): MLflow
    keeps pyfunc artifacts under `artifacts/<key>/`."""
    return f"artifacts/{ARTIFACT}/{FILES[role]}"


def _read(path: Path) -> dict:
    return json.loads(path.read_text())


def read_arrays(path: str | os.PathLike, kind: str, version: int, advice: str = "") -> tuple:
    """(arrays, meta) of one of the bundle's plain-array files (baseline.npz, neighbours.npz:
    allow_pickle=False, their "meta" a JSON string), refused unless meta["format"] is
    `version` (`kind` and `advice` name the file and what to do in the message)."""
    import numpy as np

    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays["meta"]))
    if meta.get("format") != version:
        raise ValueError(
            f"{path}: {kind} format {meta.get('format')!r}, expected {version}"
            + (f" ({advice})" if advice else "")
        )
    return arrays, meta


@dataclass(frozen=True)
class Bundle:
    """One served model's files, resolved: the folder, its model_config.json, which graph is
    served, and whether the TF-IDF half is part of it."""

    directory: Path
    config: dict
    graph: str
    hybrid: bool
    optional: tuple[str, ...] = field(default=())

    def path(self, role: str) -> Path:
        """The file of a role ("graph" or a key of FILES)."""
        return self.directory / (self.graph if role == "graph" else FILES[role])

    def read(self, role: str) -> dict:
        """A JSON file of the bundle; {} for an optional one this model does not have."""
        if role in OPTIONAL and role not in self.optional:
            return {}
        return _read(self.path(role))

    @property
    def files(self) -> list[str]:
        """Exactly the files the served model needs (graph first)."""
        roles = [*REQUIRED, *(r for r in OPTIONAL if r in self.optional)]
        return [self.graph, *(FILES[r] for r in roles)]


def served_graph(directory: str | os.PathLike, int8: bool | None = None) -> str:
    """The graph a folder serves: INT8 or fp32 as asked, else (None) the one its export chose
    (model_config.json "files"); an export from before that list: INT8 where it exists."""
    if int8 is not None:
        return ONNX_INT8 if int8 else ONNX_FP32
    d = Path(directory)
    config = d / FILES["model_config"]
    files = _read(config).get("files") if config.is_file() else None
    if files:
        return next((f for f in files if f in GRAPHS), ONNX_FP32)
    return ONNX_INT8 if (d / ONNX_INT8).is_file() else ONNX_FP32


def load(
    directory: str | os.PathLike, int8: bool | None = None, transformer_only: bool = False
) -> Bundle:
    """The bundle in `directory`, its files checked: FileNotFoundError naming the first missing
    one. A model whose config says hybrid needs its TF-IDF half (never a silent fall-back to the
    transformer alone); models from before the flag are hybrids when both files are there.
    `transformer_only`: the graph and its calibration alone (what export scores each graph as)."""
    d = Path(directory)
    graph = served_graph(d, int8)
    for path in (d / graph, *(d / FILES[r] for r in REQUIRED)):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing (run `ticketml export_onnx` first)")
    config = _read(d / FILES["model_config"])
    present = all((d / FILES[r]).is_file() for r in HYBRID_FILES)
    hybrid = bool(config.get("hybrid", present)) and not transformer_only
    if hybrid:
        for role in HYBRID_FILES:
            if not (d / FILES[role]).is_file():
                raise FileNotFoundError(
                    f"{d / FILES[role]}: missing; model_config.json says the model is a hybrid, "
                    f"which needs its TF-IDF half ({FILES[role]})"
                )
    # the smoke examples hold the whole model's answers: not those of its graph alone
    left_out = (() if hybrid else (*HYBRID_FILES, "neighbours")) + (
        ("smoke",) if transformer_only else ()
    )
    optional = tuple(r for r in OPTIONAL if r not in left_out and (d / FILES[r]).is_file())
    return Bundle(d, config, graph, hybrid, optional)


def write_config(directory: str | os.PathLike, config: dict) -> None:
    """model_config.json, atomically (a killed write leaves the old one)."""
    path = Path(directory) / FILES["model_config"]
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(config, indent=2, sort_keys=True))
    tmp.replace(path)


def publish(staging: str | os.PathLike, out: str | os.PathLike, served_files: list[str]) -> None:
    """Move what `export_onnx` staged into the export folder: model_config.json gets "files"
    (every file the served model needs), and a bundle file this export did not produce (e.g. no
    INT8 or no hybrid this time) leaves nothing stale behind. The tokenizer, label maps and
    calibration are written by `train` and stay where they are."""
    staging, out = Path(staging), Path(out)
    write_config(staging, {**_read(staging / FILES["model_config"]), "files": served_files})
    for name in (*GRAPHS, *(FILES[r] for r in EXPORTED)):
        if (staging / name).exists():
            (staging / name).replace(out / name)
        else:
            (out / name).unlink(missing_ok=True)


def copy_served(directory: str | os.PathLike, dest: str | os.PathLike, int8: bool | None = None):
    """Copy exactly the served files of the bundle in `directory` into `dest` (created); the
    bundle there, loaded."""
    bundle = load(directory, int8)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name in bundle.files:
        shutil.copyfile(bundle.directory / name, dest / name)
    config = {**bundle.config, "files": bundle.files}
    if bundle.config.get("files") != bundle.files:  # the copy says what it is
        write_config(dest, config)
    return replace(bundle, directory=dest, config=config)
