"""The model card of a registered version: what it was trained and judged on, how well it did per
task and language, how calibrated its scores are, and what it is (not) for. `register` logs it
beside the model and makes it the version's description; the training data goes in as MLflow
dataset inputs, so the MLflow UI shows a version's lineage."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig

from ticketml import TASKS
from ticketml.io import read_json

INTENDED_USE = """## Intended use and limits
- Routing and prioritising support tickets like those of the training export: same product,
  languages and label set. It predicts one topic and one priority per ticket; it does not
  extract, summarise or answer.
- Scores are calibrated probabilities (a temperature per task, plus a bias per class where that
  wins on held-out validation rows); labels follow the balanced decision rule the model was selected for, so a
  close call can give a rare class whose score is a close second. With `min_confidence`, tickets
  whose topic label scores below it are flagged for a person (`needs_review`).
- Not for tickets in languages or about products absent from the training data, for decisions
  about people, or as the only safeguard for urgent (security, outage) tickets: keep a human in
  the loop for the high-priority queue.
- Text is transformed before scoring exactly as in training (see "Text transform" below)."""


def _f1_table(models: dict, header: str) -> list[str]:
    lines = [f"| {header} | topic macro-F1 | topic ECE | priority macro-F1 | priority ECE |"]
    lines.append("| --- | --- | --- | --- | --- |")
    for name, m in models.items():
        cells = [f"{m[t][k]:.3f}" for t in TASKS for k in ("macro_f1", "ece")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def build_card(cfg: DictConfig, config: dict) -> str:
    """Markdown from the artifacts of this pipeline run (data report, evaluate report, model
    config of the served bundle); sections whose source file is missing are left out, never invented."""
    artifacts = Path(cfg.paths.artifacts_dir)
    lines = [f"# {cfg.registry.model_name}: topic and priority of support tickets", ""]
    data = artifacts / "data_report.json"
    if data.is_file():
        d = read_json(data)
        lines += [
            "## Data",
            f"- Dataset `{cfg.data.name}`, data version `{d.get('data_version', 'unknown')}`: "
            f"{d['rows_out']} tickets after cleaning ({d['rows_in']} in), split "
            + ", ".join(f"{k} {v}" for k, v in d["split_sizes"].items())
            + ".",
            f"- Text length (characters): median {d['text_length_chars']['p50']:.0f}, "
            f"95th percentile {d['text_length_chars']['p95']:.0f}.",
        ]
        if d.get("language_counts"):
            langs = ", ".join(f"{k} {v}" for k, v in d["language_counts"].items())
            lines.append(f"- Languages: {langs}.")
        lines.append("")
    lines += [
        "## Model",
        f"- Encoder `{config.get('encoder_name')}`, max {config.get('max_length')} tokens; "
        + ("hybrid with the TF-IDF baseline" if config.get("hybrid") else "transformer alone")
        + f"; served graph `{(config.get('files') or ['?'])[0]}`.",
        "- Text transform: "
        + ", ".join(f"{k}={v}" for k, v in (config.get("text_transform") or {}).items())
        + ".",
        "",
    ]
    report = artifacts / "metrics" / "report.json"
    if report.is_file():
        r = read_json(report)
        lines += [f"## Test results ({r['test_rows']} tickets, raw text through the model)", ""]
        lines += _f1_table(r["models"], "model")
        for lang, models in (r.get("by_language") or {}).items():
            lines += ["", f"Language `{lang}`:", ""]
            lines += _f1_table(models, "model")
        lines.append("")
    lines += [INTENDED_USE, ""]
    return "\n".join(lines)


def log_lineage(
    cfg: DictConfig, splits: tuple[str, ...] = ("train", "val", "test"), frames: dict | None = None
) -> dict:
    """The processed splits (those named) as MLflow dataset inputs of the active run (training,
    validation, test), named by dataset and data version; returns {split: dataset}. `frames`:
    the splits the stage has already read (else they are read here)."""
    import mlflow

    from ticketml.contract import data_version, load_splits

    version = data_version(cfg)
    contexts = {"train": "training", "val": "validation", "test": "test"}
    logged = {}
    for split, frame in (frames if frames is not None else load_splits(cfg)).items():
        if split not in splits:
            continue
        columns = [c for c in ("raw_text", "text", "topic", "priority", "language") if c in frame]
        with warnings.catch_warnings():  # MLflow registers the local-file source twice
            warnings.filterwarnings("ignore", "The specified dataset source can be interpreted")
            dataset = mlflow.data.from_pandas(
                pd.DataFrame(frame[columns]),
                source=str((Path(cfg.paths.processed_dir) / f"{split}.parquet").resolve()),
                name=f"{cfg.data.name}-{split}@{version}",
                targets="topic",
            )
        mlflow.log_input(dataset, context=contexts[split])
        logged[split] = dataset
    return logged
