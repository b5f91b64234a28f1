"""train: fit the multi-task model, evaluate the best checkpoint, write metrics/plots, log to MLflow."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from omegaconf import DictConfig, OmegaConf

from ticketml import TASKS
from ticketml.baseline import load_label_maps, load_splits
from ticketml.calibration import calibrate, routing_table, softmax
from ticketml.data.schema import encode_labels
from ticketml.encoder import load_tokenizer
from ticketml.errors import TicketMLError
from ticketml.io import atomic_path, read_json, write_json
from ticketml.metrics import evaluate_probs, flat_metrics, summary_line
from ticketml.plots import confusion_matrix_plot, curves_plot, reliability_plot
from ticketml.tracking import log_safely
from ticketml.training.datamodule import TicketDataModule
from ticketml.training.module import MultiTaskClassifier, predict_logits

log = logging.getLogger(__name__)
BEST_CHECKPOINT = "best.ckpt"


class EpochHistory(Callback):
    """Per-epoch train/val metrics: kept for the plots and logged to the active MLflow run."""

    def __init__(self):
        self.rows: list[dict[str, float]] = []
        self.epoch_seconds: list[float] = []
        self._start = 0.0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        mlflow = sys.modules.get("mlflow")  # only log when the caller set MLflow up
        self.epoch_seconds.append(time.perf_counter() - self._start)
        row = {
            k.replace("_epoch", ""): float(v)
            for k, v in trainer.callback_metrics.items()
            if k.startswith("val/") or k == "train/loss_epoch"
        }
        self.rows.append(row)
        if mlflow is not None and mlflow.active_run():
            from ticketml.tracking import log_safely

            # per epoch as "val/..."; the final best-model numbers are "val_..."
            log_safely(mlflow.log_metrics, row, step=trainer.current_epoch)

    def series(self, key: str) -> list[float]:
        return [r[key] for r in self.rows if key in r]


def resolve_precision(train_cfg: DictConfig) -> tuple[str, str]:
    """(accelerator, precision): bf16-mixed (or 16-mixed) on a GPU, 32-true on CPU."""
    accelerator = train_cfg.accelerator
    on_gpu = torch.cuda.is_available() and accelerator in ("auto", "gpu", "cuda")
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise TicketMLError(
            "train.accelerator=gpu but no CUDA device is available (use train.accelerator=auto)"
        )
    if train_cfg.precision:
        return ("gpu" if on_gpu else "cpu"), str(train_cfg.precision)
    if on_gpu:
        return "gpu", "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "cpu", "32-true"


def build_datamodule(cfg: DictConfig, batch_size: int | None = None) -> TicketDataModule:
    tokenizer = load_tokenizer(cfg.model.encoder_name)
    return TicketDataModule(
        load_splits(cfg),
        load_label_maps(cfg),
        tokenizer,
        max_length=int(cfg.model.max_length),
        batch_size=int(batch_size or cfg.train.batch_size),
        text_prefix=cfg.model.text_prefix or "",
        balanced_sampling=bool(cfg.train.balanced_sampling),
        num_workers=int(cfg.train.num_workers),
        seed=int(cfg.seed),
    )


def build_model(cfg: DictConfig, dm: TicketDataModule) -> MultiTaskClassifier:
    dm.setup()
    m, t = cfg.model, cfg.train
    return MultiTaskClassifier(
        encoder_name=m.encoder_name,
        num_labels={k: len(v) for k, v in dm.label_maps.items()},
        pooling=m.pooling,
        dropout=float(m.dropout),
        loss_weights=OmegaConf.to_container(m.loss_weights),
        class_weights=dm.class_weights() if m.class_weights else None,
        learning_rate=float(t.learning_rate),
        head_learning_rate=float(t.head_learning_rate) if t.head_learning_rate else None,
        weight_decay=float(t.weight_decay),
        warmup_ratio=float(t.warmup_ratio),
        freeze_encoder=bool(m.freeze_encoder),
        label_maps=dm.label_maps,
        max_length=int(m.max_length),
        text_prefix=m.text_prefix or "",
    ).train()  # from_pretrained returns the encoder in eval mode (dropout off)


def build_trainer(
    cfg: DictConfig, callbacks: list, max_epochs: int, checkpoint_dir: str | None
) -> L.Trainer:
    t = cfg.train
    accelerator, precision = resolve_precision(t)
    progress = (
        t.progress_bar if t.progress_bar is not None else os.environ.get("CI", "").lower() != "true"
    )
    return L.Trainer(
        accelerator=accelerator,
        devices=t.devices,
        strategy=t.strategy,
        precision=precision,
        max_epochs=max_epochs,
        callbacks=callbacks,
        logger=False,
        enable_checkpointing=checkpoint_dir is not None,
        enable_progress_bar=bool(progress),
        enable_model_summary=False,
        deterministic=accelerator == "cpu",
        limit_train_batches=t.limit_train_batches,
        num_sanity_val_steps=0,
        default_root_dir=checkpoint_dir or ".",
    )


def fit(
    trainer: L.Trainer, model: MultiTaskClassifier, dm: TicketDataModule, batch_size: int
) -> None:
    """trainer.fit with a CUDA out-of-memory error turned into advice."""
    try:
        trainer.fit(model, datamodule=dm)
    except torch.cuda.OutOfMemoryError as exc:
        raise TicketMLError(
            f"CUDA out of memory at train.batch_size={batch_size}: lower it, e.g. "
            f"train.batch_size={max(1, batch_size // 2)}"
        ) from exc


def evaluate(model: MultiTaskClassifier, dm: TicketDataModule) -> tuple[dict, dict]:
    """Metrics (contract shape) and logits for val and test."""
    metrics, logits = {}, {}
    for split in ("val", "test"):
        loader = dm.val_dataloader() if split == "val" else dm.test_dataloader()
        logits[split] = predict_logits(model, loader)
        labels = encode_labels(dm.frames[split], dm.label_maps)
        metrics[split] = evaluate_probs(logits[split], labels, dm.label_maps)
    return metrics, logits


def compare_with_baseline(cfg: DictConfig, metrics: dict) -> dict[str, float]:
    path = Path(cfg.paths.artifacts_dir) / "metrics" / "baseline.json"
    if not path.is_file():
        return {}
    ours, base = flat_metrics(metrics), flat_metrics(read_json(path))
    return {
        f"delta_vs_baseline_{k}": ours[k] - base[k]
        for k in ours
        if k in base and k.startswith("test_")
    }


def write_plots(
    cfg: DictConfig, history: EpochHistory, metrics: dict, label_maps: dict
) -> list[Path]:
    plots = Path(cfg.paths.plots_dir)
    out = [
        curves_plot(
            {"train": history.series("train/loss"), "val": history.series("val/loss")},
            "loss",
            "cross-entropy (weighted sum)",
            plots / "loss_curve.png",
        ),
        curves_plot(
            {t: history.series(f"val/{t}_macro_f1") for t in TASKS}
            | {"mean": history.series("val/mean_macro_f1")},
            "validation macro-F1",
            "macro-F1",
            plots / "f1_curve.png",
        ),
    ]
    for task in TASKS:
        out.append(
            confusion_matrix_plot(
                metrics["test"][task]["confusion_matrix"],
                label_maps[task],
                f"{task} (test)",
                plots / f"confusion_matrix_{task}.png",
            )
        )
    return out


def train_model(
    cfg: DictConfig,
    extra_callbacks: list | None = None,
    max_epochs: int | None = None,
    checkpoint_dir: str | None = None,
) -> tuple[MultiTaskClassifier, TicketDataModule, EpochHistory, str | None]:
    """Fit once; returns the best model (reloaded from its checkpoint when checkpointing)."""
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    dm = build_datamodule(cfg)
    model = build_model(cfg, dm)
    history = EpochHistory()
    callbacks = [
        history,
        EarlyStopping(
            monitor=cfg.train.monitor, mode="max", patience=int(cfg.train.early_stopping_patience)
        ),
    ]
    checkpoint = None
    if checkpoint_dir:
        checkpoint = ModelCheckpoint(
            dirpath=checkpoint_dir,
            filename="multitask-epoch{epoch:02d}",
            monitor=cfg.train.monitor,
            mode="max",
            save_top_k=1,
            save_weights_only=True,
            auto_insert_metric_name=False,
        )
        callbacks.append(checkpoint)
    callbacks += extra_callbacks or []
    trainer = build_trainer(cfg, callbacks, int(max_epochs or cfg.train.max_epochs), checkpoint_dir)
    fit(trainer, model, dm, int(cfg.train.batch_size))
    best = checkpoint.best_model_path if checkpoint else None
    if best:
        state = torch.load(best, map_location=model.device, weights_only=True)["state_dict"]
        model.load_state_dict(state)
    return model, dm, history, best


def add_calibration(
    cfg: DictConfig, metrics: dict, logits: dict, dm: TicketDataModule
) -> tuple[dict, list]:
    """Fit a temperature per task on val; add ECE/NLL to the test metrics; write calibration.json,
    reliability diagrams, and the topic routing table (coverage vs accuracy by confidence)."""
    labels = {split: encode_labels(dm.frames[split], dm.label_maps) for split in ("val", "test")}
    calibration = {}
    for task in TASKS:
        result = calibrate(
            logits["val"][task], labels["val"][task], logits["test"][task], labels["test"][task]
        )
        calibration[task] = {"temperature": result.pop("temperature")}
        metrics["test"][task].update(result)
        reliability_plot(
            softmax(logits["test"][task]),
            softmax(logits["test"][task], calibration[task]["temperature"]),
            labels["test"][task],
            f"{task} reliability (test)",
            Path(cfg.paths.plots_dir) / f"reliability_{task}.png",
        )
    write_json(calibration, Path(cfg.paths.artifacts_dir) / "calibration.json")
    topic_probs = softmax(logits["test"]["topic"], calibration["topic"]["temperature"])
    return calibration, routing_table(topic_probs, labels["test"]["topic"])


def train_and_log(cfg: DictConfig) -> dict:
    """Train with checkpoints, evaluate the best, write every output, log it all to the active run."""
    import mlflow

    ckpt_dir = Path(cfg.paths.checkpoints_dir)
    started = time.perf_counter()
    model, dm, history, best = train_model(cfg, checkpoint_dir=str(ckpt_dir))
    metrics, logits = evaluate(model, dm)
    calibration, routing = add_calibration(cfg, metrics, logits, dm)
    summary = {
        "epochs": len(history.rows),
        "fit_seconds": time.perf_counter() - started,
        "epoch_seconds": history.epoch_seconds,
        "train_rows": len(dm.frames["train"]),
        "precision": resolve_precision(cfg.train)[1],
        "encoder": cfg.model.encoder_name,
    }
    best_path = ckpt_dir / BEST_CHECKPOINT
    with atomic_path(best_path) as tmp:
        shutil.copyfile(best, tmp)
    metrics_path = write_json(
        {**metrics, "calibration": calibration, "routing": routing, "summary": summary},
        Path(cfg.paths.artifacts_dir) / "metrics" / "multitask.json",
    )
    plots = write_plots(cfg, history, metrics, dm.label_maps)
    plots += [Path(cfg.paths.plots_dir) / f"reliability_{t}.png" for t in TASKS]
    deltas = compare_with_baseline(cfg, metrics)

    def log_run() -> None:
        mlflow.log_metrics({**flat_metrics(metrics), **deltas})
        mlflow.log_metrics(
            {
                f"test_{t}_{k}": metrics["test"][t][k]
                for t in TASKS
                for k in ("ece_uncalibrated", "ece", "nll_uncalibrated", "nll")
            }
        )
        mlflow.log_metrics({f"temperature_{t}": calibration[t]["temperature"] for t in TASKS})
        mlflow.log_artifact(str(Path(cfg.paths.artifacts_dir) / "calibration.json"))
        mlflow.log_artifact(str(metrics_path), artifact_path="metrics")
        mlflow.log_artifact(str(Path(cfg.paths.artifacts_dir) / "label_maps.json"))
        for plot in plots:
            mlflow.log_artifact(str(plot), artifact_path="plots")
        mlflow.log_artifact(str(best_path), artifact_path="checkpoints")

    if mlflow.active_run():
        log_safely(log_run)
    for split in ("val", "test"):
        print(summary_line("multitask", split, metrics[split]))
    for t in TASKS:
        m = metrics["test"][t]
        print(
            f"  {t}: temperature {calibration[t]['temperature']:.2f}, test ECE {m['ece_uncalibrated']:.3f} -> "
            f"{m['ece']:.3f}, NLL {m['nll_uncalibrated']:.3f} -> {m['nll']:.3f}"
        )
    for key, value in deltas.items():
        if key.endswith("macro_f1"):
            print(f"  {key}: {value:+.3f}")
    return metrics


def run_train(cfg: DictConfig) -> dict:
    from ticketml.tracking import start_run

    with start_run(cfg, "train"):
        return train_and_log(cfg)
