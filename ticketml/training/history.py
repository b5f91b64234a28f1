"""Per-epoch metrics and times of a fit, for the plots, MLflow and the throughput benchmark."""

from __future__ import annotations

import sys
import time

import torch
from lightning.pytorch.callbacks import Callback

from ticketml.tracking import StageLog


class EpochHistory(Callback):
    """Per-epoch train/val metrics and times: kept for the plots and logged to the active MLflow
    run. `epoch_seconds` is the whole epoch (validation included); `train_seconds` the training
    loop alone and `val_seconds` the validation."""

    def __init__(self):
        self.rows: list[dict[str, float]] = []
        self.epoch_seconds: list[float] = []
        self.train_seconds: list[float] = []
        self.val_seconds: list[float] = []
        # where a stage's time goes outside the epochs (train_model, finalize): building the data
        # and model, Lightning's set-up before the first epoch (sanity check included), ...
        self.phase_seconds: dict[str, float] = {}
        # train.average_top_k > 1: the epochs averaged, both val scores and whether it won
        self.averaged: dict | None = None
        # model.lexical: the encoder's share of each task's product, fitted on val
        self.expert_weights: dict[str, float] | None = None
        self._start = self._val_start = self._fit_start = 0.0

    @staticmethod
    def _now(pl_module) -> float:
        if pl_module.device.type == "cuda":  # queued GPU work belongs to the part that queued it
            torch.cuda.synchronize(pl_module.device)
        return time.perf_counter()

    def on_fit_start(self, trainer, pl_module) -> None:
        self._fit_start = time.perf_counter()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start = self._now(pl_module)
        self.phase_seconds.setdefault("before_first_epoch", self._start - self._fit_start)

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
            k: float(v)
            for k, v in trainer.callback_metrics.items()
            if k.startswith("val/") or k == "train/loss"
        }
        self.rows.append(row)
        if mlflow is not None and mlflow.active_run():
            # per epoch as "val/..."; the final best-model numbers are "val_..."
            StageLog(mlflow.active_run()).metrics(row, step=trainer.current_epoch)

    def series(self, key: str) -> list[float]:
        return [r[key] for r in self.rows if key in r]
