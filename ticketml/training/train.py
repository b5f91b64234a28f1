"""train: fit the multi-task model, evaluate the best checkpoint, write metrics/plots, log to MLflow."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from omegaconf import DictConfig, OmegaConf

from ticketml import TASKS
from ticketml.calibration import calibrate, routing_table, softmax
from ticketml.contract import (
    BEST_CHECKPOINT,
    CALIBRATION,
    LABEL_MAPS,
    artifact,
    load_label_maps,
    load_splits,
    split_path,
)
from ticketml.data.schema import encode_labels
from ticketml.encoder import load_tokenizer
from ticketml.errors import TicketMLError
from ticketml.io import atomic_path, read_json, write_json
from ticketml.metrics import evaluate_probs, flat_metrics, summary_line
from ticketml.plots import confusion_matrix_plot, curves_plot, reliability_plot
from ticketml.ranks import is_rank_zero
from ticketml.tracking import StageLog
from ticketml.training.datamodule import TicketDataModule
from ticketml.training.module import MultiTaskClassifier, predict_logits

log = logging.getLogger(__name__)


class EpochHistory(Callback):
    """Per-epoch train/val metrics and times: kept for the plots and logged to the active MLflow
    run. `epoch_seconds` is the whole epoch (validation included); `train_seconds` the training
    loop alone and `val_seconds` the validation."""

    def __init__(self):
        self.rows: list[dict[str, float]] = []
        self.epoch_seconds: list[float] = []
        self.train_seconds: list[float] = []
        self.val_seconds: list[float] = []
        self._start = self._val_start = 0.0

    @staticmethod
    def _now(pl_module) -> float:
        if pl_module.device.type == "cuda":  # queued GPU work belongs to the part that queued it
            torch.cuda.synchronize(pl_module.device)
        return time.perf_counter()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start = self._now(pl_module)

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self._val_start = self._now(pl_module)
        if not trainer.sanity_checking:
            self.train_seconds.append(self._val_start - self._start)

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self.val_seconds.append(self._now(pl_module) - self._val_start)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        mlflow = sys.modules.get("mlflow")  # only log when the caller set MLflow up
        self.epoch_seconds.append(self._now(pl_module) - self._start)
        row = {
            k.replace("_epoch", ""): float(v)
            for k, v in trainer.callback_metrics.items()
            if k.startswith("val/") or k == "train/loss_epoch"
        }
        self.rows.append(row)
        if mlflow is not None and mlflow.active_run():
            # per epoch as "val/..."; the final best-model numbers are "val_..."
            StageLog(mlflow.active_run()).metrics(row, step=trainer.current_epoch)

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


@dataclass(frozen=True)
class Runtime:
    """What the `auto` training settings come to on this machine."""

    accelerator: str
    precision: str
    batch_size: int
    lr_scale: float
    learning_rate: float
    pad_to: int
    eval_batch_size: int

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(self.precision)


def auto_value(value, cpu: int, gpu: int, on_gpu: bool) -> int:
    return int(value) if str(value) != "auto" else (gpu if on_gpu else cpu)


MIN_STEPS_PER_EPOCH = 50


def gpu_batch_size(train_rows: int | None) -> int:
    """The largest power of two from 32 to 256 that leaves at least 50 steps an epoch: 256 when
    there is data for it (a step of 32 leaves an H100 mostly idle), smaller on small splits (a few
    big steps an epoch under-train: bench/results/train_gpu_batch_quality.json)."""
    batch = 256
    while train_rows is not None and batch > 32 and train_rows / batch < MIN_STEPS_PER_EPOCH:
        batch //= 2
    return batch


def train_rows(cfg: DictConfig) -> int | None:
    import pyarrow.parquet as pq

    path = split_path(cfg, "train")
    return pq.ParquetFile(path).metadata.num_rows if path.is_file() else None


def resolve_runtime(cfg: DictConfig) -> Runtime:
    """Accelerator and precision, then the batch size (auto: 32 on the CPU; on a GPU see
    gpu_batch_size), the learning rate for it (train.learning_rate holds at batch 32; scaled by
    train.lr_scaling), the padding multiple and the evaluation batch size."""
    t = cfg.train
    accelerator, precision = resolve_precision(t)
    on_gpu = accelerator == "gpu"
    if str(t.batch_size) == "auto":
        batch = gpu_batch_size(train_rows(cfg)) if on_gpu else 32
    else:
        batch = int(t.batch_size)
    ratio = batch / 32
    scale = {"none": 1.0, "sqrt": ratio**0.5, "linear": ratio}.get(str(t.lr_scaling))
    if scale is None:
        raise TicketMLError(f"train.lr_scaling={t.lr_scaling!r} must be none, sqrt or linear")
    return Runtime(
        accelerator=accelerator,
        precision=precision,
        batch_size=batch,
        lr_scale=scale,
        learning_rate=float(t.learning_rate) * scale,
        pad_to=auto_value(t.pad_to_multiple, 8, 32, on_gpu),
        eval_batch_size=auto_value(t.eval_batch_size, 64, 512, on_gpu),
    )


def head_tokens(m: DictConfig) -> int:
    """How many leading tokens model.truncation=head_tail keeps (0: plain truncation)."""
    if str(m.truncation) not in ("head", "head_tail"):
        raise TicketMLError(f"model.truncation={m.truncation!r} must be head or head_tail")
    if str(m.truncation) == "head":
        return 0
    if not 1 < int(m.head_tokens) < int(m.max_length) - 1:
        raise TicketMLError(
            f"model.head_tokens={m.head_tokens} must be within (1, model.max_length - 1)"
        )
    return int(m.head_tokens)


def build_datamodule(cfg: DictConfig, runtime: Runtime | None = None) -> TicketDataModule:
    runtime = runtime or resolve_runtime(cfg)
    tokenizer = load_tokenizer(cfg.model.encoder_name)
    return TicketDataModule(
        load_splits(cfg),
        load_label_maps(cfg),
        tokenizer,
        max_length=int(cfg.model.max_length),
        batch_size=runtime.batch_size,
        text_prefix=cfg.model.text_prefix or "",
        balanced_sampling=bool(cfg.train.balanced_sampling),
        num_workers=int(cfg.train.num_workers),
        seed=int(cfg.seed),
        pad_to=runtime.pad_to,
        eval_batch_size=runtime.eval_batch_size,
        pin_memory=runtime.accelerator == "gpu",
        head_tokens=head_tokens(cfg.model),
    )


def build_model(
    cfg: DictConfig, dm: TicketDataModule, runtime: Runtime | None = None
) -> MultiTaskClassifier:
    runtime = runtime or resolve_runtime(cfg)
    dm.setup()
    m, t = cfg.model, cfg.train
    model = MultiTaskClassifier(
        encoder_name=m.encoder_name,
        num_labels={k: len(v) for k, v in dm.label_maps.items()},
        pooling=m.pooling,
        dropout=float(m.dropout),
        loss_weights=OmegaConf.to_container(m.loss_weights),
        class_weights=dm.class_weights() if m.class_weights else None,
        learning_rate=runtime.learning_rate,
        head_learning_rate=(
            float(t.head_learning_rate) * runtime.lr_scale if t.head_learning_rate else None
        ),
        weight_decay=float(t.weight_decay),
        warmup_ratio=float(t.warmup_ratio),
        freeze_encoder=bool(m.freeze_encoder),
        label_maps=dm.label_maps,
        max_length=int(m.max_length),
        text_prefix=m.text_prefix or "",
        truncation=str(m.truncation),
        head_tokens=head_tokens(m),
    ).train()  # from_pretrained returns the encoder in eval mode (dropout off)
    if t.compile:  # in place: parameter names, so checkpoints and export, stay the same
        model.encoder.compile(dynamic=True)
    return model


def build_trainer(
    cfg: DictConfig, callbacks: list, max_epochs: int, checkpoint_dir: str | None
) -> L.Trainer:
    t = cfg.train
    accelerator, precision = resolve_precision(t)
    if accelerator == "gpu" and not t.cudnn_attention:
        # cuDNN's attention plans anew for each new sequence width (160+ ms a time)
        torch.backends.cuda.enable_cudnn_sdp(False)
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
        log_every_n_steps=int(t.log_every_n_steps),
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


def evaluate(
    model: MultiTaskClassifier, dm: TicketDataModule, runtime: Runtime | None = None
) -> tuple[dict, dict]:
    """Metrics (contract shape) and logits for val and test, on the model's device (under the
    training precision's autocast)."""
    dtype = runtime.autocast_dtype if runtime and model.device.type != "cpu" else None
    metrics, logits = {}, {}
    for split in ("val", "test"):
        logits[split] = predict_logits(model, dm.eval_loader(split), dtype)
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
    runtime = resolve_runtime(cfg)
    dm = build_datamodule(cfg, runtime)
    model = build_model(cfg, dm, runtime)
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
    fit(trainer, model, dm, runtime.batch_size)
    # Lightning's teardown leaves the module on the CPU: evaluation goes back to the accelerator.
    model.to(trainer.strategy.root_device)
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
    started = time.perf_counter()
    model, dm, history, best = train_model(cfg, checkpoint_dir=cfg.paths.checkpoints_dir)
    if not is_rank_zero():  # DDP: the other processes trained their share; rank zero writes
        return {}
    return finalize(cfg, model, dm, history, best, started)


def load_trained(cfg: DictConfig, checkpoint: str) -> tuple[MultiTaskClassifier, TicketDataModule]:
    """A model trained earlier (e.g. the best Optuna trial), on this run's accelerator."""
    runtime = resolve_runtime(cfg)
    dm = build_datamodule(cfg, runtime)
    dm.setup()
    device = "cuda" if runtime.accelerator == "gpu" else "cpu"
    return MultiTaskClassifier.load_from_checkpoint(checkpoint, map_location=device), dm


def finalize(
    cfg: DictConfig,
    model: MultiTaskClassifier,
    dm: TicketDataModule,
    history: EpochHistory,
    best: str,
    started: float,
) -> dict:
    """Evaluate the best weights, calibrate, write checkpoints/best.ckpt, metrics and plots, and
    log them all to the active MLflow run."""
    import mlflow

    ckpt_dir = Path(cfg.paths.checkpoints_dir)
    runtime = resolve_runtime(cfg)
    metrics, logits = evaluate(model, dm, runtime)
    calibration, routing = add_calibration(cfg, metrics, logits, dm)
    summary = {
        "epochs": len(history.rows),
        "fit_seconds": time.perf_counter() - started,
        "epoch_seconds": history.epoch_seconds,
        "train_loop_seconds": history.train_seconds,
        "validation_seconds": history.val_seconds,
        "train_rows": len(dm.frames["train"]),
        "batch_size": runtime.batch_size,
        "learning_rate": runtime.learning_rate,
        "precision": runtime.precision,
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

    if mlflow.active_run():
        stage = StageLog(mlflow.active_run())
        stage.metrics({**flat_metrics(metrics), **deltas})
        stage.metrics(
            {
                f"test_{t}_{k}": metrics["test"][t][k]
                for t in TASKS
                for k in ("ece_uncalibrated", "ece", "nll_uncalibrated", "nll")
            }
        )
        stage.metrics({f"temperature_{t}": calibration[t]["temperature"] for t in TASKS})
        stage.artifact(artifact(cfg, CALIBRATION))
        stage.artifact(metrics_path, "metrics")
        stage.artifact(artifact(cfg, LABEL_MAPS))
        for plot in plots:
            stage.artifact(plot, "plots")
        stage.artifact(best_path, "checkpoints")
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
    from ticketml.tracking import stage_run

    with stage_run(cfg, "train"):
        return train_and_log(cfg)
