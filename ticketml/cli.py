"""`python -m ticketml <command> [--option=value ...] [key=value ...]`: one table, command → function.

Trailing `key=value` arguments (and the original `--overrides='["k=v"]'`) are Hydra overrides;
`--name=value` options are passed to the command (e.g. `infer --text=...`, `serve --port=8080`).
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import NamedTuple


class Command(NamedTuple):
    target: str  # "module:function", imported lazily so `--help` and serving stay light
    summary: str
    groups: tuple[str, ...] = ()  # the config groups it reads besides `seed` (--help, --cfg job)


# The one command registry: name -> Command.
COMMANDS: dict[str, Command] = {
    "download_data": Command(
        "ticketml.data.sources:download_data",
        "obtain raw data (local/DVC/URL/synthetic)",
        ("data", "paths"),
    ),
    "preprocess": Command(
        "ticketml.data.preprocess:preprocess",
        "validate, clean and split into data/processed/",
        ("data", "preprocess", "paths", "mlflow"),
    ),
    "data": Command(
        "ticketml.data.preprocess:download_and_preprocess",
        "download_data then preprocess",
        ("data", "preprocess", "paths", "mlflow"),
    ),
    "baseline": Command(
        "ticketml.baseline:run_baseline",
        "TF-IDF + LogisticRegression per task",
        ("baseline", "paths", "mlflow"),
    ),
    "pretrain": Command(
        "ticketml.training.pretrain:run_pretrain",
        "continue the encoder's masked-LM training on the export's text (TAPT)",
        ("pretrain", "model", "train", "paths", "mlflow"),
    ),
    "train": Command(
        "ticketml.training.train:run_train",
        "train the multi-task transformer",
        ("model", "train", "paths", "mlflow"),
    ),
    "tune": Command(
        "ticketml.training.tune:run_tune",
        "Optuna study; keeps the best model",
        ("tune", "model", "train", "paths", "mlflow"),
    ),
    "export_onnx": Command(
        "ticketml.export:run_export",
        "export the best checkpoint to ONNX (+ INT8)",
        ("export", "model", "paths", "mlflow"),
    ),
    "evaluate": Command(
        "ticketml.evaluate:run_evaluate",
        "baseline vs transformer vs hybrid, per task and language",
        ("export", "data", "paths", "mlflow"),
    ),
    "register": Command(
        "ticketml.registry:run_register",
        "log the pyfunc model, register, alias @challenger",
        ("registry", "export", "paths", "mlflow"),
    ),
    "promote": Command(
        "ticketml.registry:run_promote",
        "move @champion to @challenger if it is at least as good",
        ("promote", "registry", "paths", "mlflow"),
    ),
    "infer": Command(
        "ticketml.infer:run_infer",
        "predict one --text or a --input_path file",
        ("infer", "export", "paths", "mlflow"),
    ),
    "score_spark": Command(
        "ticketml.spark:run_score_spark",
        "score a CSV/Parquet dataset on Spark with the champion (mlflow spark_udf)",
        ("spark", "infer", "mlflow"),
    ),
    "encoder": Command(
        "ticketml.encoder_prepare:run_encoder",
        "encoder prepare multilingual-e5-small: convert an offline encoder for training",
        (),
    ),
    "serve": Command(
        "ticketml.serving.app:run_serve",
        "FastAPI service: /predict /feedback /ready /metrics, every prediction logged",
        ("serve", "infer", "export", "paths", "mlflow"),
    ),
    "monitor": Command(
        "ticketml.monitoring.monitor:run_monitor",
        "drift and live accuracy over a window of the prediction log; exit 3 past a threshold",
        ("monitor", "serve", "infer", "paths", "mlflow"),
    ),
    "stack": Command(
        "ticketml.stack:run_stack",
        "stack start|stop|status|env: PostgreSQL + MLflow server + serve, no Docker",
        ("stack", "serve"),
    ),
}

# The whole pipeline, in order (MLproject `main`, scripts/demo.sh).
PIPELINE = ["data", "baseline", "tune", "export_onnx", "evaluate", "register", "promote"]

USAGE = "usage: ticketml <command> [--option=value ...] [key=value ...] [--overrides='[\"k=v\"]']"


def print_help() -> None:
    print(USAGE)
    print("\ncommands:")
    for name, command in COMMANDS.items():
        print(f"  {name:<14} {command.summary}")
    print("\noptions: --verbose (full tracebacks), --overrides='[\"train.max_epochs=1\"]'")
    print("examples:\n  ticketml train train.max_epochs=1 train.batch_size=16")
    print('  ticketml infer --text="Cannot connect to the VPN from my laptop"')


def split_args(argv: Sequence[str]) -> tuple[list[str], dict[str, str], bool, list[str]]:
    """Split argv into (hydra overrides, --options, verbose, positional words)."""
    from ticketml.config import parse_overrides_option
    from ticketml.errors import ConfigError

    overrides: list[str] = []
    options: dict[str, str] = {}
    positional: list[str] = []
    verbose = False
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("--verbose", "-v"):
            verbose = True
        elif arg in ("--help", "-h"):
            options["help"] = "true"
        elif arg.startswith("--"):
            name, sep, value = arg[2:].partition("=")
            if not sep:
                if i + 1 >= len(args):
                    raise ConfigError(f"option --{name} needs a value (--{name}=VALUE)")
                i += 1
                value = args[i]
            name = name.replace("-", "_")
            if name == "overrides":
                overrides.extend(parse_overrides_option(value))
            else:
                options[name] = value
        elif "=" in arg:
            overrides.append(arg)
        else:
            positional.append(arg)
        i += 1
    return overrides, options, verbose, positional


def run_command(
    name: str, overrides: Sequence[str] = (), positional: Sequence[str] = (), **options: str
) -> object:
    """Compose the config and call the command's function (used by the CLI and entrypoints/)."""
    from ticketml.config import load_config
    from ticketml.errors import ConfigError

    if name not in COMMANDS:
        raise ConfigError(f"unknown command {name!r}; commands: {', '.join(COMMANDS)}")
    if "help" in options or "h" in options:  # before the stage's module (train's: lightning)
        from ticketml.config import config_dir
        from ticketml.help import command_help

        print(command_help(name, COMMANDS[name], load_config(overrides), config_dir()))
        return None
    module_name, func_name = COMMANDS[name].target.split(":")
    func = getattr(importlib.import_module(module_name), func_name)
    # `cfg` is the composed config; `overrides`, where a command takes it, the overrides it was
    # composed from (tune passes them on to the workers it starts)
    signature = inspect.signature(func).parameters
    params = {k: v for k, v in signature.items() if k not in ("cfg", "overrides")}
    accepted = list(params)
    free = [p for p in accepted if p not in options]
    if "cfg" in options:
        from ticketml.help import resolved

        print(resolved(load_config(overrides), COMMANDS[name].groups), end="")
        return None
    if len(positional) > len(free):
        raise ConfigError(
            f"{name}: unexpected argument {positional[len(free)]!r} (overrides are key=value)"
        )
    options = {**options, **dict(zip(free, positional, strict=False))}
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        allowed = ", ".join(f"--{p}" for p in accepted) or "none"
        raise ConfigError(f"{name}: unknown option --{unknown[0]} (accepted: {allowed})")
    missing = [p for p, v in params.items() if v.default is v.empty and p not in options]
    if missing:
        raise ConfigError(f"{name}: missing argument <{missing[0]}>")
    cfg = load_config(overrides)
    if "overrides" in signature:
        options["overrides"] = list(overrides)
    return func(cfg, **options)


class Terminated(BaseException):
    """SIGTERM as an exception, so that `finally` blocks remove temp files on the way out."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print_help()
        return 0 if argv else 2
    verbose = os.environ.get("HYDRA_FULL_ERROR") == "1"
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("ticketml").setLevel(logging.INFO)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # no tips/banners
    from ticketml.errors import TicketMLError
    from ticketml.redact import mask

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main_thread else None
    try:
        overrides, options, verbose_flag, positional = split_args(argv[1:])
        verbose = verbose or verbose_flag
        run_command(argv[0], overrides, positional, **options)
    except KeyboardInterrupt:
        print("ERROR: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("ERROR: terminated (SIGTERM); nothing half-written was kept", file=sys.stderr)
        return 143
    except TicketMLError as exc:
        if verbose:
            raise
        print(f"ERROR: {mask(str(exc))}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 1))
    except Exception as exc:  # noqa: BLE001 - the CLI contract is one ERROR line, no traceback
        if verbose:
            raise
        print(f"ERROR: {argv[0]} failed: {type(exc).__name__}: {mask(str(exc))}", file=sys.stderr)
        print("(rerun with --verbose for the traceback)", file=sys.stderr)
        return 1
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
        from ticketml.clock import command_ended

        command_ended()
    return 0


def entrypoint(stages: Sequence[str], argv: Sequence[str] | None = None) -> int:
    """MLproject entry points: `python entrypoints/X.py [--overrides "k=v k=v" | '["k=v"]']`."""
    import argparse

    from ticketml.config import parse_overrides_option

    parser = argparse.ArgumentParser()
    parser.add_argument("--overrides", default="")
    args = parser.parse_args(argv)
    overrides = parse_overrides_option(args.overrides)
    stages = list(stages)
    beside = None  # the baseline fitting while the transformer trains on the GPU
    try:
        for i, stage in enumerate(stages):
            if stage == "baseline" and stages[i + 1 : i + 2] in (["train"], ["tune"]):
                if trains_on_gpu(overrides):
                    beside = start_beside(stage, overrides, stages[i + 1])
                    continue
            if beside is not None and stage not in ("train", "tune"):
                code, beside = finish_beside(beside), None  # export needs baseline.npz
                if code:
                    return code
            print(f"== ticketml {stage} {' '.join(overrides)}", flush=True)
            code = main([stage, *overrides])
            if code:
                return code
        return finish_beside(beside) if beside is not None else 0
    finally:
        if beside is not None and beside.poll() is None:  # a stage failed: stop it, no leftovers
            beside.terminate()
            beside.wait(timeout=60)


def trains_on_gpu(overrides: Sequence[str]) -> bool:
    """Whether the transformer stage will train on a GPU (train.accelerator auto|gpu and CUDA)."""
    from ticketml.config import load_config

    try:
        if str(load_config(list(overrides)).train.accelerator).lower() == "cpu":
            return False
    except Exception:  # noqa: BLE001 - a bad override: the stages say so, one after the other
        return False
    import torch

    return torch.cuda.is_available()


TRAINER_CORES = 2  # what the baseline beside training leaves to it: batches and kernel launches


def beside_env(env: dict | None = None) -> dict:
    """`env` (default: this process's) for the baseline beside training: every core but
    TRAINER_CORES for its loky processes (features, scoring), left to the GPU's training loop.
    It does not remove the slowdown: on an H200, epochs beside the baseline still ran up to 2x
    their time after it (bench/results/gpu/scale_gpu_main.json)."""
    from ticketml.baseline import cpu_count

    cores = max(1, cpu_count() - TRAINER_CORES)
    return {**(os.environ if env is None else env), "LOKY_MAX_CPU_COUNT": str(cores)}


def start_beside(stage: str, overrides: Sequence[str], trainer: str):
    """`stage` (the baseline: its features on the CPU, its heads on the GPU where torch sees
    one) in a child process, beside the GPU's `trainer` stage; its output goes to the same
    console, each line marked with the stage."""
    from ticketml.io import start_child

    print(f"== ticketml {stage} {' '.join(overrides)} (beside {trainer})")
    return start_child([stage, *overrides], stage, beside_env())


def finish_beside(proc) -> int:
    from ticketml.io import finish_child

    code = finish_child(proc)
    if code:
        print(f"ERROR: the baseline stage beside training failed (exit {code})", flush=True)
    return code
