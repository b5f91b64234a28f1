"""TF-IDF (word + char n-grams) + LogisticRegression, one sklearn Pipeline per task."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

from ticketml import TASKS
from ticketml.data.schema import encode_labels
from ticketml.errors import ModelError
from ticketml.io import atomic_path, read_json, write_json
from ticketml.metrics import evaluate_probs, flat_metrics, summary_line
from ticketml.plots import confusion_matrix_plot

log = logging.getLogger(__name__)


def load_splits(cfg: DictConfig) -> dict[str, pd.DataFrame]:
    from ticketml.data.preprocess import SPLITS
    from ticketml.io import read_table

    return {s: read_table(Path(cfg.paths.processed_dir) / f"{s}.parquet") for s in SPLITS}


def load_label_maps(cfg: DictConfig) -> dict[str, list[str]]:
    return read_json(Path(cfg.paths.artifacts_dir) / "label_maps.json")


def build_pipeline(b: DictConfig, seed: int) -> Pipeline:
    features = FeatureUnion(
        [
            (
                "word",
                TfidfVectorizer(
                    ngram_range=(1, int(b.word_ngram_max)),
                    sublinear_tf=True,
                    min_df=1,
                    max_features=int(b.max_features),
                ),
            ),
            (
                "char",
                TfidfVectorizer(
                    analyzer="char_wb",
                    ngram_range=(int(b.char_ngram_min), int(b.char_ngram_max)),
                    sublinear_tf=True,
                    min_df=2,
                    max_features=int(b.max_features),
                ),
            ),
        ]
    )
    clf = LogisticRegression(
        C=float(b.C), class_weight=b.class_weight, max_iter=int(b.max_iter), random_state=seed
    )
    return Pipeline([("tfidf", features), ("clf", clf)])


def baseline_path(cfg: DictConfig, task: str) -> Path:
    return Path(cfg.paths.artifacts_dir) / "baseline" / f"{task}.skops"


def load_baseline(cfg: DictConfig) -> dict[str, Pipeline]:
    """Load the fitted pipelines with skops: no pickle, only types on skops' safe list load
    (a file that needs anything else is refused with the types it asked for)."""
    import skops.io as sio
    from skops.io.exceptions import UntrustedTypesFoundException

    models = {}
    for task in TASKS:
        path = baseline_path(cfg, task)
        if not path.is_file():
            raise ModelError(f"{path}: no baseline model (run `ticketml baseline` first)")
        try:  # trusted=[]: skops itself refuses any type outside its safe list
            models[task] = sio.load(path, trusted=[])
        except UntrustedTypesFoundException as exc:
            raise ModelError(f"{path}: refusing to load untrusted types: {exc}") from exc
    return models


def predict_proba(
    models: dict[str, Pipeline], texts: list[str], label_maps: dict
) -> dict[str, np.ndarray]:
    """Class probabilities per task, columns in label_maps order."""
    out = {}
    for task, model in models.items():
        proba = model.predict_proba(texts)
        cols = [
            list(model.classes_).index(label) if label in model.classes_ else None
            for label in label_maps[task]
        ]
        out[task] = np.stack(
            [proba[:, c] if c is not None else np.zeros(len(texts)) for c in cols], axis=1
        )
    return out


def save_model(model: Pipeline, path: Path) -> None:
    """skops format (zip of JSON + numpy arrays, no pickle), written atomically."""
    import zipfile

    import skops.io as sio

    with atomic_path(path) as tmp:
        sio.dump(model, tmp, compression=zipfile.ZIP_DEFLATED)


def run_baseline(cfg: DictConfig) -> dict:
    """Fit on train, evaluate on val/test, save models, metrics, plots; log to MLflow."""
    import mlflow

    from ticketml.tracking import start_run

    splits = load_splits(cfg)
    label_maps = load_label_maps(cfg)
    models = {}
    for task in TASKS:
        log.info("fitting baseline for %s on %d rows", task, len(splits["train"]))
        models[task] = build_pipeline(cfg.baseline, int(cfg.seed)).fit(
            splits["train"]["text"], splits["train"][task]
        )
    metrics = {
        split: evaluate_probs(
            predict_proba(models, splits[split]["text"].tolist(), label_maps),
            encode_labels(splits[split], label_maps),
            label_maps,
        )
        for split in ("val", "test")
    }
    artifacts = Path(cfg.paths.artifacts_dir)
    for task, model in models.items():
        save_model(model, baseline_path(cfg, task))
    metrics_path = write_json(metrics, artifacts / "metrics" / "baseline.json")
    plot_dir = Path(cfg.paths.plots_dir)
    plots = [
        confusion_matrix_plot(
            metrics["test"][task]["confusion_matrix"],
            label_maps[task],
            f"baseline {task} (test)",
            plot_dir / f"baseline_confusion_matrix_{task}.png",
        )
        for task in TASKS
    ]
    with start_run(cfg, "baseline"):
        mlflow.log_metrics(flat_metrics(metrics))
        mlflow.log_artifact(str(metrics_path), artifact_path="metrics")
        for plot in plots:
            mlflow.log_artifact(str(plot), artifact_path="plots")
        for task, model in models.items():
            mlflow.sklearn.log_model(model, name=f"baseline_{task}", serialization_format="skops")
    for split in ("val", "test"):
        print(summary_line("baseline", split, metrics[split]))
    return metrics
