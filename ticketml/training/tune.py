"""tune: an Optuna study (TPE, median pruning, SQLite storage), each trial a nested MLflow run;
the best trial's own checkpoint is kept as the tuned model (no second training)."""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

import optuna
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig, OmegaConf

from ticketml.errors import ConfigError, TicketMLError
from ticketml.tracking import StageLog, stage_run, start_run
from ticketml.training.history import EpochHistory
from ticketml.training.runtime import budget
from ticketml.training.study import WORKER, open_study, wait_for_other_workers
from ticketml.training.train import (
    finalize,
    load_trained,
    train_and_log,
    train_model,
)

log = logging.getLogger(__name__)


class OptunaPruning(Callback):
    """Report the monitored validation metric each epoch; stop the trial when Optuna says prune."""

    def __init__(self, trial: optuna.Trial, monitor: str):
        self.trial, self.monitor = trial, monitor

    def on_validation_end(self, trainer, pl_module) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if value is None or trainer.sanity_checking:
            return
        self.trial.report(float(value), step=trainer.current_epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(
                f"epoch {trainer.current_epoch}: {self.monitor}={float(value):.4f}"
            )


def search_space(space: DictConfig, prefix: str = "") -> dict[str, dict]:
    """Flatten the nested search space to {config.key: spec}."""
    out = {}
    for key, value in space.items():
        path = f"{prefix}{key}"
        if "type" in value:
            out[path] = OmegaConf.to_container(value)
        else:
            out.update(search_space(value, prefix=f"{path}."))
    return out


def suggest(trial: optuna.Trial, space: dict[str, dict]) -> dict[str, object]:
    params = {}
    for name, spec in space.items():
        kind = spec["type"]
        if kind == "float":
            params[name] = trial.suggest_float(
                name, spec["low"], spec["high"], log=spec.get("log", False)
            )
        elif kind == "int":
            params[name] = trial.suggest_int(
                name, spec["low"], spec["high"], log=spec.get("log", False)
            )
        elif kind == "categorical":
            params[name] = trial.suggest_categorical(name, list(spec["choices"]))
        else:
            raise ConfigError(
                f"tune.search_space.{name}: unknown type {kind!r} (float, int, categorical)"
            )
    return params


def check_enqueued(trials, space: dict[str, dict]) -> None:
    """Every key of an enqueued trial (tune.enqueue_trials) must be in the search space, and a
    categorical value one of its choices: Optuna would ignore the key, or fail the trial with a
    bare ValueError. (A number outside its range is Optuna's to warn about: it runs.)"""
    for i, params in enumerate(trials or []):
        for name, value in OmegaConf.to_container(params, resolve=True).items():
            where = f"tune.enqueue_trials[{i}].{name}={value!r}"
            spec = space.get(name)
            if spec is None:
                raise ConfigError(f"{where}: not in tune.search_space ({', '.join(space)})")
            if spec["type"] == "categorical" and value not in list(spec["choices"]):
                raise ConfigError(
                    f"{where}: not one of tune.search_space.{name}.choices {list(spec['choices'])}"
                )


def enqueued_rates(cfg: DictConfig) -> list[dict]:
    """tune.enqueue_trials with train.learning_rate=auto as the number it means here (a float
    distribution takes numbers): the rate this machine and encoder train with (learning_rates)."""
    trials = OmegaConf.to_container(cfg.tune.enqueue_trials or [], resolve=True)
    key = "train.learning_rate"
    if any(str(p.get(key)) == "auto" for p in trials):
        from ticketml.contract import split_path
        from ticketml.encoder import choose_encoder
        from ticketml.training.runtime import learning_rates, resolve_precision

        on_gpu = resolve_precision(cfg.train)[0] == "gpu"
        encoder, _ = choose_encoder(cfg.model.encoder_name, split_path(cfg, "train"), on_gpu)
        rate = learning_rates(cfg, encoder, on_gpu)[0]
        trials = [{**p, key: rate} if str(p.get(key)) == "auto" else p for p in trials]
    return trials


def with_params(cfg: DictConfig, params: dict[str, object]) -> DictConfig:
    new = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    for key, value in params.items():
        OmegaConf.update(new, key, value, force_add=True)
    return new


def trials_dir(cfg: DictConfig) -> Path:
    return Path(cfg.paths.checkpoints_dir) / "trials"


def make_objective(cfg: DictConfig, space: dict[str, dict]):
    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", WORKER)
        params = suggest(trial, space)
        trial_cfg = with_params(cfg, params)
        trial_cfg.train.limit_train_batches = cfg.tune.limit_train_batches
        folder = trials_dir(cfg) / f"trial-{trial.number}"
        pruned: optuna.TrialPruned | None = None
        # tagged like every stage run (commit, data version); the trial's own params only
        with start_run(cfg, f"trial-{trial.number}", nested=True, log_config=False) as run:
            stage = StageLog(run)
            stage.tags(**{"optuna.trial": trial.number})
            stage.params(params)
            try:
                _, _, history, best = train_model(
                    trial_cfg,
                    extra_callbacks=[OptunaPruning(trial, cfg.train.monitor)],
                    max_epochs=cfg.tune.max_epochs,
                    checkpoint_dir=str(folder),
                )
            except optuna.TrialPruned as exc:
                # a pruned trial stopped as planned: its run ends FINISHED (tagged pruned), not
                # FAILED, and Optuna gets the TrialPruned once the run is closed
                stage.tags(**{"optuna.state": "pruned"})
                shutil.rmtree(folder, ignore_errors=True)
                pruned = exc
            else:
                value = max(history.series(cfg.train.monitor))
                # what the kept model needs later: its weights and its training history
                trial.set_user_attr("checkpoint", str(Path(best).resolve()))
                trial.set_user_attr(
                    "history",
                    {
                        "rows": history.rows,
                        "epoch_seconds": history.epoch_seconds,
                        "train_seconds": history.train_seconds,
                        "val_seconds": history.val_seconds,
                    },
                )
                stage.metrics({"objective": value})
                stage.tags(**{"optuna.state": "complete"})
        if pruned is not None:
            raise pruned
        return value

    return objective


def keep_best_checkpoint(study: optuna.Study, folder: Path) -> None:
    """After each trial: delete the local checkpoints of finished trials that are not the
    study's best (a running trial's, maybe another worker's, is left alone)."""
    try:
        best = study.best_trial.number
    except ValueError:  # no completed trial yet
        return
    finished = {tr.number for tr in study.get_trials(deepcopy=False) if tr.state.is_finished()}
    for path in folder.glob("trial-*"):
        number = path.name.removeprefix("trial-")
        if number.isdigit() and int(number) in finished and int(number) != best:
            shutil.rmtree(path, ignore_errors=True)


def restore_history(attrs: dict) -> EpochHistory:
    history = EpochHistory()
    saved = attrs.get("history", {})
    history.rows = saved.get("rows", [])
    history.epoch_seconds = saved.get("epoch_seconds", [])
    history.train_seconds = saved.get("train_seconds", [])
    history.val_seconds = saved.get("val_seconds", [])
    return history


def keep_best(cfg: DictConfig, best: optuna.trial.FrozenTrial, stage: StageLog) -> dict:
    """The study's best trial becomes the tuned model: its checkpoint is evaluated and written
    out as `ticketml train` would (no second training). A best trial whose checkpoint is not on
    this machine (an earlier run elsewhere) is trained again with its parameters."""
    best_cfg = with_params(cfg, best.params)
    checkpoint = best.user_attrs.get("checkpoint")
    if checkpoint and Path(checkpoint).is_file():
        print(f"tune: keeping trial {best.number}'s model ({checkpoint}); no retraining")
        started = time.perf_counter()
        model, dm = load_trained(best_cfg, checkpoint, cfg.tune.max_epochs)
        history = restore_history(best.user_attrs)
        for epoch, row in enumerate(history.rows):  # the trial's curves, at its run's steps
            stage.metrics(row, step=epoch)
        return finalize(best_cfg, model, dm, history, checkpoint, started, stage)
    print(f"tune: trial {best.number}'s checkpoint is not here; training its configuration again")
    best_cfg.train.max_epochs = cfg.tune.max_epochs
    return train_and_log(best_cfg, stage)


def progress_bar(cfg: DictConfig) -> bool:
    """Optuna's bar over the trials: on, except when train.progress_bar=false or CI=true."""
    setting = cfg.train.progress_bar
    return bool(setting if setting is not None else os.environ.get("CI", "").lower() != "true")


def keeps_the_model(best: optuna.trial.FrozenTrial, started: float) -> bool:
    """Exactly one worker keeps the tuned model: the one that ran the best trial (it has the
    checkpoint). A best trial from before this worker started (a resumed study) is kept here."""
    if best.user_attrs.get("worker") == WORKER:
        return True
    finished = best.datetime_complete.timestamp() if best.datetime_complete else started
    return finished < started


STARTED_ENV = "TICKETML_TUNE_STARTED"  # set by run_workers for the workers it starts


def tune_workers(cfg: DictConfig) -> int:
    """How many processes share the study on this machine (tune.workers). auto: 4 where the
    trials train on a GPU and the storage is a database server (MiniLM leaves most of a GPU idle:
    on one H200 4 workers ran 1.47x the trials an hour of one, bench/tune_workers.py), else 1."""
    from ticketml.training.runtime import resolve_precision

    choice = str(cfg.tune.workers).lower()
    server = not str(cfg.tune.storage).startswith("sqlite")
    if choice == "auto":
        return 4 if server and resolve_precision(cfg.train)[0] == "gpu" else 1
    if not choice.isdigit() or int(choice) < 1:
        raise ConfigError(f"tune.workers={cfg.tune.workers}: auto or a whole number >= 1")
    if int(choice) > 1 and not server:
        raise ConfigError(
            f"tune.workers={choice} needs a database server as tune.storage (SQLite is for one "
            "process): `make stack`, then `eval $(ticketml stack env)`"
        )
    return int(choice)


def run_workers(cfg: DictConfig, overrides: list[str], workers: int) -> dict:
    """The study's trials split over `workers` processes on this machine, all started at once,
    each with its share of the cores: this one and workers - 1 children (`ticketml tune` with the
    same overrides), whose lines are relayed marked with their number. Fails when any does."""
    import torch

    from ticketml.baseline import cpu_count
    from ticketml.io import finish_child, start_child

    trials = int(cfg.tune.n_trials)
    shares = [trials // workers + (i < trials % workers) for i in range(workers)]
    threads = str(max(1, cpu_count() // workers))
    # the study's start for every worker: a trial this process finishes while a child is still
    # importing is not "from before it started" (a resumed study's), which that child would keep
    env = {
        **os.environ,
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        STARTED_ENV: repr(time.time()),
    }
    print(f"tune: {trials} trials over {workers} workers ({shares}), {threads} cores each")
    children = [
        start_child(
            ["tune", *overrides, "tune.workers=1", f"tune.n_trials={n}"], f"worker {i}", env
        )
        for i, n in enumerate(shares[1:], start=1)
        if n
    ]
    torch.set_num_threads(int(threads))
    cfg.tune.workers, cfg.tune.n_trials = 1, shares[0]
    try:
        result = run_study(cfg)
    except BaseException:
        for proc in children:  # a failed or stopped study stops its workers
            proc.terminate()
        raise
    finally:
        codes = [finish_child(proc) for proc in children]
    if any(codes):
        raise TicketMLError(f"tune: {sum(c != 0 for c in codes)} of {workers} workers failed")
    return result


def run_tune(cfg: DictConfig, overrides: list[str] | None = None) -> dict:
    """Run `tune.n_trials` more trials (over tune.workers processes); the best trial's model is
    kept as the tuned model."""
    workers = tune_workers(cfg)
    if workers == 1:
        return run_study(cfg)
    if overrides is None:
        raise ConfigError(
            f"tune.workers={workers}: the workers need the overrides this study was composed "
            "from (`ticketml tune ...`, or run_tune(cfg, overrides))"
        )
    return run_workers(cfg, overrides, workers)


def prepare_study(cfg: DictConfig) -> tuple[optuna.Study, dict]:
    """The study this worker joins and its search space, every setting checked before a trial
    runs."""
    t = cfg.tune
    if "ddp" in str(cfg.train.strategy) or str(cfg.train.devices) not in ("auto", "1"):
        raise ConfigError(
            "tune runs each trial in this one process: use train.devices=1 (spread a study "
            "over processes or machines with several tune workers on one tune.storage instead)"
        )
    cfg.train.devices = 1  # "auto" would take every GPU of a multi-GPU machine (DDP)
    space = search_space(t.search_space)
    t.enqueue_trials = enqueued_rates(cfg)
    check_enqueued(t.enqueue_trials, space)
    budget(cfg.train, on_gpu=False, max_epochs=t.max_epochs)  # fails before any trial runs
    # each worker samples with its own seed: concurrent workers must not propose the same trials
    seed = int(cfg.seed) + os.getpid() if "sqlite" not in str(t.storage) else int(cfg.seed)
    sampler = optuna.samplers.TPESampler(seed=seed)
    pruner = optuna.pruners.MedianPruner(
        n_startup_trials=int(t.pruner_startup_trials), n_warmup_steps=int(t.pruner_warmup_epochs)
    )
    study, _ = open_study(cfg, sampler, pruner)
    return study, space


def report_best(cfg: DictConfig, study: optuna.Study, parent) -> optuna.trial.FrozenTrial:
    """The study's best trial, logged on the tune run and printed; an error where none
    completed."""
    complete = [tr for tr in study.trials if tr.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise TicketMLError(
            f"study {cfg.tune.study_name!r}: no trial completed (all pruned or failed)"
        )
    best = study.best_trial
    parent.params({f"best.{k}": v for k, v in best.params.items()})
    pruned = sum(tr.state == optuna.trial.TrialState.PRUNED for tr in study.trials)
    parent.metrics(
        {
            "best_objective": best.value,
            "n_trials_total": len(study.trials),
            "n_trials_pruned": pruned,
        }
    )
    print(
        f"tune: best trial {best.number} {cfg.train.monitor}={best.value:.4f} params={best.params}"
    )
    return best


def run_study(cfg: DictConfig) -> dict:
    """This process's `tune.n_trials` trials of the study, then, where this worker ran the best
    trial, its model kept as the tuned model."""
    t = cfg.tune
    study, space = prepare_study(cfg)
    started = float(os.environ.get(STARTED_ENV) or time.time())
    with stage_run(cfg, "tune") as parent:
        parent.tags(**{"optuna.study": t.study_name, "optuna.worker": WORKER})
        parent.inputs(cfg, ("train", "val"))
        study.optimize(
            make_objective(cfg, space),
            n_trials=int(t.n_trials),
            timeout=t.timeout,
            gc_after_trial=True,
            show_progress_bar=progress_bar(cfg),
            callbacks=[lambda st, _: keep_best_checkpoint(st, trials_dir(cfg))],
        )
        wait_for_other_workers(study)
        best = report_best(cfg, study, parent)
        if not keeps_the_model(best, started):
            print(
                f"tune: trial {best.number} ran on worker {best.user_attrs.get('worker')}, "
                "which keeps the tuned model"
            )
            return {}
        # the kept model's run: tagged like every stage run (commit, data version), with its
        # parameters and per-epoch curves (the kept trial's, or those of its retraining)
        with start_run(cfg, "best", nested=True, log_config=False) as run:
            kept = StageLog(run)
            kept.tags(**{"optuna.best_trial": best.number})
            kept.params(best.params)
            metrics = keep_best(cfg, best, kept)
        parent.tags(best_run_id=run.info.run_id)
    log.info("tune parent run %s", parent.run_id)
    return metrics
