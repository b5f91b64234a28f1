"""What the `auto` training settings come to on this machine and this data: accelerator and
precision, batch size and the learning rate for it, padding multiple, evaluation batch size, the
training budget (epoch cap, early-stopping patience, time cap), and how long tickets are cut."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from omegaconf import DictConfig

from ticketml.contract import split_path
from ticketml.encoder import choose_encoder
from ticketml.errors import TicketMLError


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
    head_learning_rate: float | None  # None: the encoder's (both scaled by lr_scale)
    pad_to: int
    eval_batch_size: int
    max_epochs: int
    patience: int
    max_minutes: float | None
    encoder_name: str = ""  # model.encoder_name, `auto` chosen (ticketml.encoder.choose_encoder)

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return autocast_dtype(self.precision)


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype of a Lightning precision (None: full precision)."""
    return {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(precision)


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


# The training budget: on a GPU an epoch of MiniLM costs seconds, so training runs until
# validation stops improving (patience 4) under a cap of 20 epochs (the linear schedule decays
# over the cap); on the CPU the short budget that keeps `make demo` within 10 minutes.
CPU_EPOCHS, GPU_EPOCHS = 6, 60
CPU_PATIENCE, GPU_PATIENCE = 2, 6
GPU_MINUTES = 10.0  # the wall-clock cap of `auto` on a GPU (none on the CPU: 6 epochs end first)


def positive_int(value, key: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number < 1 or str(value).strip() != str(number):
        raise TicketMLError(f"{key}={value!r} must be a positive whole number or auto")
    return number


def auto_int(value, cpu: int, gpu: int, on_gpu: bool, key: str) -> int:
    """`auto` as `cpu` or `gpu` for this machine, else a positive whole number (`key` names the
    setting in the error)."""
    if str(value) == "auto":
        return gpu if on_gpu else cpu
    return positive_int(value, key)


def budget(t: DictConfig, on_gpu: bool, max_epochs=None) -> tuple[int, int, float | None]:
    """(epoch cap, early-stopping patience, minutes cap) from train.max_epochs (or the given
    `max_epochs`, e.g. tune.max_epochs), train.early_stopping_patience and train.max_minutes."""
    epochs = t.max_epochs if max_epochs is None else max_epochs
    epochs = auto_int(epochs, CPU_EPOCHS, GPU_EPOCHS, on_gpu, "train.max_epochs")
    patience = auto_int(
        t.early_stopping_patience,
        CPU_PATIENCE,
        GPU_PATIENCE,
        on_gpu,
        "train.early_stopping_patience",
    )
    minutes = t.get("max_minutes")
    if str(minutes) == "auto":
        minutes = GPU_MINUTES if on_gpu else None
    try:
        minutes = float(minutes) if minutes is not None else None
    except ValueError:
        raise TicketMLError(
            f"train.max_minutes={minutes!r} must be a number, auto or null"
        ) from None
    if minutes is not None and minutes <= 0:
        raise TicketMLError(f"train.max_minutes={minutes} must be positive (or null: no cap)")
    return epochs, patience, minutes


def resolve_runtime(cfg: DictConfig, max_epochs=None) -> Runtime:
    """Accelerator and precision, then the batch size (auto: 32 on the CPU; on a GPU see
    gpu_batch_size), the learning rate for it (train.learning_rate holds at batch 32; scaled by
    train.lr_scaling), the padding multiple, the evaluation batch size and the training budget
    (`budget`; `max_epochs` overrides train.max_epochs, as tune.max_epochs does) and the
    encoder (model.encoder_name=auto: ticketml.encoder.choose_encoder)."""
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
    epochs, patience, minutes = budget(t, on_gpu, max_epochs)
    encoder, why = choose_encoder(cfg.model.encoder_name, split_path(cfg, "train"), on_gpu)
    if why != "set":
        print(f"model.encoder_name=auto: {encoder} ({why})", flush=True)
    rate, head_rate = learning_rates(cfg, encoder, on_gpu)
    return Runtime(
        accelerator=accelerator,
        precision=precision,
        batch_size=batch,
        lr_scale=scale,
        learning_rate=rate * scale,
        head_learning_rate=head_rate * scale if head_rate is not None else None,
        pad_to=auto_value(t.pad_to_multiple, 8, 32, on_gpu),
        eval_batch_size=auto_value(t.eval_batch_size, 64, 512, on_gpu),
        max_epochs=epochs,
        patience=patience,
        max_minutes=minutes,
        encoder_name=encoder,
    )


def learning_rates(cfg: DictConfig, encoder: str, on_gpu: bool) -> tuple[float, float | None]:
    """(the encoder's rate, the heads' or None for the encoder's) at batch 32, before lr_scaling:
    train.learning_rate and train.head_learning_rate where set; `auto` is the encoder's own,
    model.learning_rate (heads: the same) on the CPU, model.gpu_learning_rate and
    model.gpu_head_learning_rate on a GPU. Where model=auto chose another encoder than MiniLM
    (whose settings, overrides included, it has), that encoder's own file gives them
    (ticketml.encoder.MODEL_FILES); train.learning_rate set to a number always wins."""
    from omegaconf import OmegaConf

    from ticketml.config import config_dir
    from ticketml.encoder import ENGLISH_ENCODER, MODEL_FILES

    t, m = cfg.train, cfg.model
    if str(m.name) == "auto" and encoder != ENGLISH_ENCODER and encoder in MODEL_FILES:
        m = OmegaConf.load(config_dir() / "model" / f"{MODEL_FILES[encoder]}.yaml")
    rate, head = t.learning_rate, t.head_learning_rate
    if str(rate) == "auto":
        rate = m.gpu_learning_rate if on_gpu else m.learning_rate
    if str(head) == "auto":
        head = m.gpu_head_learning_rate if on_gpu else None
    try:
        return float(rate), (float(head) if head is not None else None)
    except ValueError:
        raise TicketMLError(
            f"train.learning_rate={t.learning_rate!r} and train.head_learning_rate="
            f"{t.head_learning_rate!r} must be numbers or auto (the heads' also null)"
        ) from None


def lexical_layer(m: DictConfig, runtime: Runtime) -> bool:
    """model.lexical: true, false, or auto: the token layer where training runs on a GPU (round
    36, one H100, 15 splits of three datasets: the transformer alone level with TF-IDF or ahead
    on both tasks of each, the served hybrid within 0.003 of the encoder alone's), none on the
    CPU (at the demo's budget the served hybrid did not gain, for 10% more training time)."""
    value = str(m.lexical).lower()
    if value not in ("true", "false", "auto"):
        raise TicketMLError(f"model.lexical={m.lexical!r} must be true, false or auto")
    return value == "true" or (value == "auto" and runtime.accelerator == "gpu")


def head_tokens(m: DictConfig) -> int:
    """How many leading tokens model.truncation=head_tail keeps (0: plain truncation); auto =
    half of model.max_length."""
    if str(m.truncation) not in ("head", "head_tail"):
        raise TicketMLError(f"model.truncation={m.truncation!r} must be head or head_tail")
    if str(m.truncation) == "head":
        return 0
    if str(m.head_tokens) == "auto":
        return int(m.max_length) // 2
    head = positive_int(m.head_tokens, "model.head_tokens")
    if not 1 < head < int(m.max_length) - 1:
        raise TicketMLError(
            f"model.head_tokens={m.head_tokens} must be within (1, model.max_length - 1)"
        )
    return head
