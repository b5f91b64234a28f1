"""train: fit the multi-task model, evaluate the best checkpoint, write metrics/plots, log to MLflow."""

from __future__ import annotations

import logging
import os
import shutil
import time
from datetime import timedelta
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping
from omegaconf import DictConfig, OmegaConf

from pyfunc.probability import decide, scaled, softmax
from ticketml import TASKS
from ticketml.calibration import calibrate, routing_table
from ticketml.clock import startup_seconds
from ticketml.contract import (
    BEST_CHECKPOINT,
    CALIBRATION,
    LABEL_MAPS,
    artifact,
    load_label_maps,
    load_splits,
)
from ticketml.encoder import load_tokenizer
from ticketml.errors import ConfigError, TicketMLError
from ticketml.hybrid import best_weight
from ticketml.io import atomic_path, read_json, write_json
from ticketml.metrics import evaluate_probs, fast_macro_f1, flat_metrics, summary_line
from ticketml.plots import confusion_plots, curves_plot, reliability_plot
from ticketml.ranks import is_rank_zero
from ticketml.tracking import StageLog
from ticketml.training.datamodule import TicketDataModule
from ticketml.training.history import EpochHistory
from ticketml.training.module import (
    MultiTaskClassifier,
    compile_encoder,
    expert_product,
    predict_logits,
)
from ticketml.training.pretrain import encoder_lineage
from ticketml.training.runtime import Runtime, head_tokens, lexical_layer, resolve_runtime

log = logging.getLogger(__name__)
# Lightning sets its logger to INFO with its own handler when it is imported (after the CLI set
# it): keep its tips and banners out, and its warnings printed once, not again by the root handler
logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
logging.getLogger("lightning.pytorch").propagate = False


def training_seed(cfg: DictConfig) -> int:
    """The training run's seed (initial weights, batch order): train.seed, else the top-level
    seed (which also splits the data): another train.seed retrains on the same split."""
    return int(cfg.seed if cfg.train.seed is None else cfg.train.seed)


def build_datamodule(cfg: DictConfig, runtime: Runtime | None = None) -> TicketDataModule:
    runtime = runtime or resolve_runtime(cfg)
    tokenizer = load_tokenizer(runtime.encoder_name)
    splits, label_maps = load_splits(cfg), load_label_maps(cfg)
    dm = TicketDataModule(
        splits,
        label_maps,
        tokenizer,
        max_length=int(cfg.model.max_length),
        batch_size=runtime.batch_size,
        text_prefix=cfg.model.text_prefix or "",
        balanced_sampling=bool(cfg.train.balanced_sampling),
        num_workers=int(cfg.train.num_workers),
        seed=training_seed(cfg),
        pad_to=runtime.pad_to,
        eval_batch_size=runtime.eval_batch_size,
        pin_memory=runtime.accelerator == "gpu",
        head_tokens=head_tokens(cfg.model),
        teachers=teacher_probs(cfg, splits, label_maps),
    )
    dm.runtime = runtime  # resolved once: evaluation and the summary read it from here
    return dm


def distill_weight(t: DictConfig) -> float:
    value = float(t.distill_weight)
    if not 0.0 <= value < 1.0:
        raise ConfigError(f"train.distill_weight={value}: a share of the loss in [0, 1)")
    if value and t.baseline_product:
        raise ConfigError(
            "train.distill_weight and train.baseline_product: one teacher use at a time"
        )
    return value


def teacher_probs(
    cfg: DictConfig, splits: dict[str, pd.DataFrame], label_maps: dict
) -> dict[str, dict[str, np.ndarray]] | None:
    """Where training reads the TF-IDF baseline (train.distill_weight > 0: soft targets;
    train.baseline_product: the other expert of the product), its out-of-fold probabilities of
    the train rows and the fold heads' mean on val (baseline.out_of_fold_probs,
    train.teacher_folds folds); else None."""
    if not distill_weight(cfg.train) and not cfg.train.baseline_product:
        return None
    from ticketml.baseline import out_of_fold_probs

    return out_of_fold_probs(
        splits["train"],
        label_maps,
        cfg.baseline,
        int(cfg.train.teacher_folds),
        int(cfg.seed),
        held={"val": splits["val"]},
    )


def build_model(
    cfg: DictConfig, dm: TicketDataModule, runtime: Runtime | None = None
) -> MultiTaskClassifier:
    runtime = runtime or resolve_runtime(cfg)
    dm.setup()
    m, t = cfg.model, cfg.train
    model = MultiTaskClassifier(
        encoder_name=runtime.encoder_name,
        num_labels={k: len(v) for k, v in dm.label_maps.items()},
        pooling=m.pooling,
        dropout=float(m.dropout),
        loss_weights=OmegaConf.to_container(m.loss_weights),
        class_weights=dm.class_weights() if m.class_weights else None,
        learning_rate=runtime.learning_rate,
        head_learning_rate=runtime.head_learning_rate,
        weight_decay=float(t.weight_decay),
        warmup_ratio=float(t.warmup_ratio),
        warmup_epochs=float(t.warmup_epochs) if t.warmup_epochs is not None else None,
        lr_schedule=str(t.lr_schedule),
        layer_decay=float(t.layer_decay),
        freeze_encoder=bool(m.freeze_encoder),
        label_maps=dm.label_maps,
        max_length=int(m.max_length),
        text_prefix=m.text_prefix or "",
        truncation=str(m.truncation),
        head_tokens=head_tokens(m),
        distill_weight=distill_weight(t),
        baseline_product=bool(t.baseline_product),
        lexical=lexical_layer(m, runtime),
        lexical_learning_rate=float(m.lexical_learning_rate),
        members=count_from_one(m.members, "model.members"),
    ).train()  # from_pretrained returns the encoder in eval mode (dropout off)
    if t.compile:
        for encoder, _ in model.pairs():
            compile_encoder(encoder)
    return model


def build_trainer(
    cfg: DictConfig, callbacks: list, runtime: Runtime, checkpoint_dir: str | None
) -> L.Trainer:
    t = cfg.train
    if runtime.accelerator == "gpu" and not t.cudnn_attention:
        # cuDNN's attention plans anew for each new sequence width (160+ ms a time)
        torch.backends.cuda.enable_cudnn_sdp(False)
    progress = (
        t.progress_bar if t.progress_bar is not None else os.environ.get("CI", "").lower() != "true"
    )
    return L.Trainer(
        accelerator=runtime.accelerator,
        devices=t.devices,
        strategy=t.strategy,
        precision=runtime.precision,
        max_epochs=runtime.max_epochs,
        # a wall-clock cap (train.max_minutes): Lightning stops at the next step past it, and
        # the best checkpoint so far is the model
        max_time=timedelta(minutes=runtime.max_minutes) if runtime.max_minutes else None,
        callbacks=callbacks,
        logger=False,
        enable_checkpointing=False,  # train_model writes the one checkpoint (BestWeights)
        enable_progress_bar=bool(progress),
        enable_model_summary=False,
        deterministic=runtime.accelerator == "cpu",
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


def autocast_dtype(model: MultiTaskClassifier, runtime: Runtime | None) -> torch.dtype | None:
    """The training precision's autocast for scoring on the model's device (none on the CPU)."""
    return runtime.autocast_dtype if runtime and model.device.type != "cpu" else None


def evaluate(
    model: MultiTaskClassifier,
    dm: TicketDataModule,
    runtime: Runtime | None = None,
    splits: tuple[str, ...] = ("val", "test"),
) -> tuple[dict, dict]:
    """Metrics (contract shape) and logits for `splits`, on the model's device (under the
    training precision's autocast)."""
    dtype = autocast_dtype(model, runtime or dm.runtime)
    metrics, logits = {}, {}
    for split in splits:
        logits[split] = predict_logits(model, dm.eval_loader(split), dtype)
        metrics[split] = evaluate_probs(logits[split], dm.splits[split].labels, dm.label_maps)
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
    return out + confusion_plots(metrics, label_maps, plots)


class BestWeights(Callback):
    """The `keep` best validation epochs' weights (by `monitor`; strictly better first, so ties
    keep the earlier epoch), held in memory on the model's device (a copy there costs the
    accelerator a fraction of a millisecond; to the host, or a checkpoint file written at every
    better epoch, tens of milliseconds of a one-second GPU epoch): the fit returns the best
    epoch's model, not the weights `patience` epochs past it, `train_model` writes its one
    checkpoint file from them, and `train.average_top_k` averages the kept ones."""

    def __init__(self, monitor: str, keep: int = 1):
        self.monitor, self.keep = monitor, keep
        self.kept: list[tuple[float, int, dict[str, torch.Tensor]]] = []  # (score, epoch, state)

    @property
    def best(self) -> float | None:
        return self.kept[0][0] if self.kept else None

    @property
    def state(self) -> dict[str, torch.Tensor] | None:
        return self.kept[0][2] if self.kept else None

    def on_validation_end(self, trainer, pl_module) -> None:
        score = trainer.callback_metrics.get(self.monitor)
        if trainer.sanity_checking or score is None:
            return
        score = float(score)
        if len(self.kept) == self.keep and score <= self.kept[-1][0]:
            return
        state = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
        self.kept.append((score, trainer.current_epoch + 1, state))
        self.kept.sort(key=lambda kept: (-kept[0], kept[1]))
        del self.kept[self.keep :]


def average_states(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The uniform average of the weights (a "soup" of checkpoints of one run); tensors that are
    not floating point (token ids, counters) from the first state."""
    return {
        k: torch.stack([s[k] for s in states]).mean(0) if v.is_floating_point() else v
        for k, v in states[0].items()
    }


def val_score(model: MultiTaskClassifier, dm: TicketDataModule, monitor: str) -> float:
    """`monitor` (val/mean_macro_f1, val/<task>_macro_f1 or val/<task>_accuracy) of the model on
    the validation split, as evaluate scores it."""
    key = monitor.replace("/", "_", 1)
    flat = flat_metrics(evaluate(model, dm, splits=("val",))[0])
    if key not in flat:
        raise TicketMLError(
            f"train.average_top_k needs train.monitor to be a validation macro-F1 or accuracy "
            f"(one of {sorted(k.replace('_', '/', 1) for k in flat)}), not {monitor!r}"
        )
    return flat[key]


def averaged_model(
    model: MultiTaskClassifier, dm: TicketDataModule, kept: BestWeights, monitor: str
) -> dict:
    """The average of the kept epochs' weights where it scores at least the best epoch on the
    validation split (both scored the same way, `val_score`), else the best epoch's weights:
    left loaded in `model`. Returns what was tried and chosen."""
    model.load_state_dict(kept.state)
    best = val_score(model, dm, monitor)
    model.load_state_dict(average_states([state for _, _, state in kept.kept]))
    averaged = val_score(model, dm, monitor)
    used = averaged >= best
    if not used:
        model.load_state_dict(kept.state)
    return {
        "epochs": [epoch for _, epoch, _ in kept.kept],
        "val_best_epoch": best,
        "val_average": averaged,
        "used": used,
    }


def train_model(
    cfg: DictConfig,
    extra_callbacks: list | None = None,
    max_epochs: int | None = None,
    checkpoint_dir: str | None = None,
) -> tuple[MultiTaskClassifier, TicketDataModule, EpochHistory, str | None]:
    """Fit once under the training budget (`max_epochs` overrides train.max_epochs; see
    runtime.budget); returns the best validation epoch's model (BestWeights, kept in memory;
    the last weights only where the time cap ended the fit before its first validation) and,
    with `checkpoint_dir`, the one checkpoint file written from it after the fit. With
    train.average_top_k > 1, the average of the k best epochs' weights where it scores at least
    the best one on val (`averaged_model`, recorded in `history.averaged`)."""
    # a bad value fails before the data and model are built
    keep = count_from_one(cfg.train.average_top_k, "train.average_top_k")
    L.seed_everything(training_seed(cfg), workers=True, verbose=False)
    started = time.perf_counter()
    runtime = resolve_runtime(cfg, max_epochs)
    dm = build_datamodule(cfg, runtime)
    model = build_model(cfg, dm, runtime)
    history = EpochHistory()
    history.phase_seconds["data_and_model"] = time.perf_counter() - started
    callbacks = [
        history,
        EarlyStopping(monitor=cfg.train.monitor, mode="max", patience=runtime.patience),
    ]
    kept = BestWeights(cfg.train.monitor, keep)
    callbacks += [kept, *(extra_callbacks or [])]
    trainer = build_trainer(cfg, callbacks, runtime, checkpoint_dir)
    started = time.perf_counter()
    fit(trainer, model, dm, runtime.batch_size)
    history.phase_seconds["fit"] = time.perf_counter() - started
    # Lightning's teardown leaves the module on the CPU: evaluation goes back to the accelerator.
    model.to(trainer.strategy.root_device)
    name = "multitask-unvalidated.ckpt"
    if kept.state is None:  # train.max_minutes ran out before the first validation
        log.warning(
            "train.max_minutes ended the fit before any validation: keeping the last weights"
        )
    else:
        model.load_state_dict(kept.state)
        name = f"multitask-epoch{kept.kept[0][1] - 1:02d}.ckpt"  # Lightning counts from 0
    if len(kept.kept) > 1:
        history.averaged = averaged_model(model, dm, kept, cfg.train.monitor)
        log.info(
            "train.average_top_k: epochs %s averaged, val %.4f against the best epoch's %.4f: %s",
            history.averaged["epochs"],
            history.averaged["val_average"],
            history.averaged["val_best_epoch"],
            "the average is the model" if history.averaged["used"] else "the best epoch kept",
        )
        if history.averaged["used"]:
            name = "multitask-averaged.ckpt"
    if model.hparams.lexical:
        history.expert_weights = fit_expert_weights(model, dm)
        log.info(
            "model.lexical: the encoder's share of each task's product %s", history.expert_weights
        )
    best = None
    if checkpoint_dir:  # one file: the model that ships, written once
        best = str(Path(checkpoint_dir) / name)
        trainer.save_checkpoint(best, weights_only=True)
    return model, dm, history, best


EXPERT_WEIGHTS = np.round(np.linspace(0, 1, 11), 2)


def fit_expert_weights(model: MultiTaskClassifier, dm: TicketDataModule) -> dict[str, float]:
    """model.lexical: per task, the encoder's share of the product with the token layer
    (`best_share` on val), set in the model, whose checkpoint and ONNX graph carry it."""
    dtype = autocast_dtype(model, dm.runtime)
    deep, lexical = predict_logits(model, dm.eval_loader("val"), dtype, experts=True)
    chosen = {}
    for task, labels in dm.splits["val"].labels.items():
        chosen[task] = best_share(deep[task], lexical[task], labels)
        getattr(model, f"expert_weight_{task}").fill_(chosen[task])
    return chosen


def best_share(deep: np.ndarray, lexical: np.ndarray, labels: np.ndarray) -> float:
    """The encoder's share in [0, 1] (a 0.1 grid) of the product of the two experts' logits
    (module.expert_product) with the best macro-F1 on these rows' labels (partial labels: the
    labelled rows; ties: the share nearest 0.5, the one it trained with). Jira (round 36): 0.5
    left the transformer alone 0.004 short of TF-IDF's topic macro-F1, the fitted share 0.004
    ahead."""
    keep = labels >= 0
    d, w = torch.from_numpy(deep[keep]), torch.from_numpy(lexical[keep])
    scores = [
        fast_macro_f1(labels[keep], expert_product(a, d, w).argmax(-1).numpy(), deep.shape[1])
        for a in EXPERT_WEIGHTS
    ]
    return best_weight(EXPERT_WEIGHTS, scores)


def count_from_one(value, key: str) -> int:
    """A count in the config, a whole number >= 1 (the typed config refuses what is not a whole
    number): train.average_top_k (1: the best epoch alone), model.members (1: one encoder)."""
    number = int(value)
    if number < 1:
        raise TicketMLError(f"{key}={number} must be a whole number >= 1")
    return number


def best_epoch(history: EpochHistory, monitor: str) -> int | None:
    """The epoch (from 1) of the best validation score: the checkpoint kept."""
    series = history.series(monitor)
    return int(max(range(len(series)), key=series.__getitem__)) + 1 if series else None


def add_calibration(
    cfg: DictConfig, metrics: dict, logits: dict, dm: TicketDataModule
) -> tuple[dict, list]:
    """Fit a calibration map per task on val (temperature + per-class bias); add ECE/NLL before
    and after to the test metrics; write calibration.json, reliability diagrams, and the topic
    routing table (coverage vs accuracy by confidence)."""
    labels = {split: dm.splits[split].labels for split in ("val", "test")}
    calibration = {}
    for task in TASKS:
        result = calibrate(
            logits["val"][task], labels["val"][task], logits["test"][task], labels["test"][task]
        )
        calibration[task] = result.pop("scaling")
        metrics["test"][task].update(result)
        reliability_plot(
            softmax(logits["test"][task]),
            scaled(logits["test"][task], calibration[task]),
            labels["test"][task],
            f"{task} reliability (test)",
            Path(cfg.paths.plots_dir) / f"reliability_{task}.png",
        )
    write_json(calibration, artifact(cfg, CALIBRATION))
    topic_probs = scaled(logits["test"]["topic"], calibration["topic"])
    topic_labels = decide(topic_probs, calibration["topic"])
    return calibration, routing_table(topic_probs, labels["test"]["topic"], topic_labels)


def train_and_log(cfg: DictConfig, stage: StageLog) -> dict:
    """Train with checkpoints, evaluate the best, write every output, log it all to `stage`."""
    started = time.perf_counter()
    model, dm, history, best = train_model(cfg, checkpoint_dir=cfg.paths.checkpoints_dir)
    if not is_rank_zero():  # DDP: the other processes trained their share; rank zero writes
        return {}
    return finalize(cfg, model, dm, history, best, started, stage)


def load_trained(
    cfg: DictConfig, checkpoint: str, max_epochs=None
) -> tuple[MultiTaskClassifier, TicketDataModule]:
    """A model trained earlier (e.g. the best Optuna trial, under `max_epochs`), on this run's
    accelerator."""
    runtime = resolve_runtime(cfg, max_epochs)
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
    stage: StageLog,
) -> dict:
    """Evaluate the best weights, calibrate, write checkpoints/best.ckpt, metrics and plots, and
    log them all to `stage` (the stage's run; StageLog(None) logs nothing)."""
    ckpt_dir = Path(cfg.paths.checkpoints_dir)
    runtime = dm.runtime
    phases = history.phase_seconds
    mark = time.perf_counter()
    metrics, logits = evaluate(model, dm, runtime)
    phases["evaluate_val_test"], mark = time.perf_counter() - mark, time.perf_counter()
    calibration, routing = add_calibration(cfg, metrics, logits, dm)
    phases["calibration"] = time.perf_counter() - mark
    summary = {
        "epochs": len(history.rows),
        "fit_seconds": time.perf_counter() - started,
        "epoch_seconds": history.epoch_seconds,
        "train_loop_seconds": history.train_seconds,
        "validation_seconds": history.val_seconds,
        "train_rows": len(dm.frames["train"]),
        "batch_size": runtime.batch_size,
        "learning_rate": runtime.learning_rate,
        "head_learning_rate": runtime.head_learning_rate,
        "precision": runtime.precision,
        "encoder": runtime.encoder_name,
        "max_epochs": runtime.max_epochs,
        "patience": runtime.patience,
        "max_minutes": runtime.max_minutes,
        "best_epoch": best_epoch(history, cfg.train.monitor),
        "averaged": history.averaged,
        "expert_weights": history.expert_weights,
        "phase_seconds": phases,
    }
    mark = time.perf_counter()
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

    if stage.run is not None:
        files = [metrics_path, *plots, best_path]
        log_train(stage, cfg, runtime.encoder_name, metrics, calibration, deltas, files)
    timing(f"checkpoint, plots and logging done in {time.perf_counter() - mark:.1f} s")
    print_train(metrics, calibration, deltas)
    return metrics


def log_train(
    stage: StageLog,
    cfg: DictConfig,
    encoder: str,
    metrics: dict,
    calibration: dict,
    deltas: dict,
    files: list,
) -> None:
    """The train run's tags (the trained `encoder`'s lineage where `pretrain` adapted it),
    metrics and artifacts: `files` are the metrics file, the plots and the best checkpoint, in
    that order."""
    metrics_path, *plots, best_path = files
    lineage = encoder_lineage(encoder)
    if lineage:
        stage.tags(
            **{
                "encoder.pretrain_run_id": lineage.get("run_id"),
                "encoder.source": lineage.get("source_encoder"),
                "encoder.sha256": lineage.get("encoder_sha256"),
            }
        )
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


def print_train(metrics: dict, calibration: dict, deltas: dict) -> None:
    for split in ("val", "test"):
        print(summary_line("multitask", split, metrics[split]))
    for t in TASKS:
        m = metrics["test"][t]
        print(
            f"  {t}: temperature {calibration[t]['temperature']:.2f}"
            + (" + class bias" if "bias" in calibration[t] else "")
            + (f" + floor {calibration[t]['floor']:.3f}" if "floor" in calibration[t] else "")
            + ", test ECE "
            f"{m['ece_uncalibrated']:.3f} -> {m['ece']:.3f}, NLL {m['nll_uncalibrated']:.3f} -> "
            f"{m['nll']:.3f}, macro-F1 {m['macro_f1_uncalibrated']:.3f} -> "
            f"{m['macro_f1_calibrated']:.3f}"
        )
    for key, value in deltas.items():
        if key.endswith("macro_f1"):
            print(f"  {key}: {value:+.3f}")


def run_train(cfg: DictConfig) -> dict:
    from ticketml.tracking import stage_run
    from ticketml.training.runtime import budget

    budget(cfg.train, on_gpu=False)  # a bad budget fails before anything is logged
    timing(f"imports and configuration done in {startup_seconds():.1f} s")
    started = time.perf_counter()
    with stage_run(cfg, "train") as stage:
        stage.inputs(cfg, ("train", "val", "test"))
        timing(f"opening the MLflow run done in {time.perf_counter() - started:.1f} s")
        return train_and_log(cfg, stage)


def timing(line: str) -> None:
    """One of train's timing lines (bench/scale.py keeps them), from rank zero only: under DDP
    every rank runs the stage."""
    if is_rank_zero():
        print(f"train: {line}", flush=True)
