"""The typed shape of the configuration: Hydra composes configs/ on top of these dataclasses
(registered in its ConfigStore as `ticketml_schema`), so a key that does not exist or a value of
the wrong type is an error, never silently ignored. The YAML files hold the defaults and their
one-line meanings (`ticketml <command> --help` prints them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

# `X | None` is not understood by OmegaConf's structured configs: Optional[...] stays.
# ruff: noqa: UP045


@dataclass
class Columns:
    text: list[str] = MISSING
    topic: str = MISSING
    priority: str = MISSING
    language: Optional[str] = None


@dataclass
class Synthetic:
    n_samples: int = 4000
    ru_share: float = 0.3
    label_noise: float = 0.05
    long_share: float = 0.0


@dataclass
class Data:
    name: str = MISSING
    source: str = "auto"
    path: Optional[str] = None
    url: Optional[str] = None
    url_timeout_s: float = 10
    format: str = "auto"
    columns: Columns = field(default_factory=Columns)
    text_joiner: str = "\n"
    value_maps: dict[str, dict[str, str]] = field(default_factory=dict)
    filters: dict[str, Any] = field(default_factory=dict)
    synthetic: Synthetic = field(default_factory=Synthetic)


@dataclass
class Model:
    name: str = MISSING
    encoder_name: str = MISSING
    text_prefix: str = ""
    max_length: int = 256
    truncation: str = "head_tail"
    head_tokens: Any = "auto"  # an int or "auto"
    pooling: str = "mean"
    dropout: float = 0.1
    freeze_encoder: bool = False
    loss_weights: dict[str, float] = field(default_factory=dict)
    class_weights: bool = True
    hybrid: bool = True
    combiner: str = "blend"
    learning_rate: float = 1e-4


@dataclass
class TextTransform:
    unescape_html: bool = True
    strip_tags: bool = True
    mask_emails: bool = False
    mask_urls: bool = False
    mask_phones: bool = False
    collapse_whitespace: bool = True
    max_chars: int = 20000


@dataclass
class Preprocess:
    val_size: float = 0.15
    test_size: float = 0.15
    min_rows: int = 30
    min_class_count: int = 8
    rare_class_strategy: str = "other"
    feedback: Optional[str] = None
    text: TextTransform = field(default_factory=TextTransform)
    lowercase_labels: bool = True


@dataclass
class Baseline:
    word_ngram_max: int = 2
    char_ngram_min: int = 2
    char_ngram_max: int = 5
    word_min_df: int = 1
    char_min_df: int = 2
    max_features: int = 200000
    C: float = 5.0
    class_weight: Optional[str] = "balanced"
    max_iter: int = 2000
    device: str = "auto"


@dataclass
class Train:
    max_epochs: Any = "auto"  # an int or "auto"
    batch_size: Any = "auto"  # an int or "auto"
    learning_rate: float = 1e-4
    lr_scaling: str = "sqrt"
    eval_batch_size: Any = "auto"
    pad_to_multiple: Any = "auto"
    compile: bool = False
    head_learning_rate: Optional[float] = None
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    warmup_epochs: Optional[float] = None
    lr_schedule: str = "linear"
    accelerator: str = "auto"
    devices: Any = "auto"
    strategy: str = "auto"
    precision: Optional[str] = None
    cudnn_attention: bool = False
    early_stopping_patience: Any = "auto"  # an int or "auto"
    max_minutes: Any = "auto"  # a number, "auto" or None
    monitor: str = "val/mean_macro_f1"
    balanced_sampling: bool = False
    num_workers: int = 0
    limit_train_batches: Any = None  # a share (0.5) or a number of batches (5)
    progress_bar: Optional[bool] = None
    log_every_n_steps: int = 10


@dataclass
class Pretrain:
    encoder_name: str = MISSING
    output_dir: str = "encoders/tapt"
    splits: list[str] = field(default_factory=lambda: ["train", "val"])
    unlabelled_path: Optional[str] = None
    max_epochs: Any = "auto"
    max_steps: Optional[int] = None
    max_minutes: Optional[float] = None
    batch_size: Any = "auto"
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    mlm_probability: float = 0.15
    max_length: int = 256


@dataclass
class Tune:
    n_trials: int = 2
    workers: Any = "auto"
    timeout: Optional[float] = None
    study_name: str = "ticketml"
    storage: str = "sqlite:///optuna.db"
    max_epochs: Any = "auto"
    limit_train_batches: Any = None
    pruner_startup_trials: int = 1
    pruner_warmup_epochs: int = 0
    heartbeat_s: int = 60
    retry_s: float = 120
    enqueue_trials: list[Any] = field(default_factory=list)
    search_space: dict[str, Any] = field(default_factory=dict)


@dataclass
class Export:
    opset: int = 17
    quantize: bool = True
    parity_atol: float = 1e-4
    use_int8: Any = "auto"  # auto | true | false
    fp32_scores: str = "auto"  # auto | onnx


@dataclass
class Registry:
    model_name: str = "ticketml"


@dataclass
class Promote:
    metric: str = "mean_macro_f1"
    min_delta: float = 0.0
    baseline_floor: bool = True
    feedback_window: Optional[str] = None
    feedback_min_rows: int = 30


@dataclass
class Infer:
    model_uri: str = "models:/ticketml@champion"
    batch_size: int = 64
    chunk_size: int = 10000
    encoding: str = "utf-8"
    min_confidence: Optional[float] = None


@dataclass
class Serve:
    host: str = "127.0.0.1"
    port: int = 8000
    model_uri: Optional[str] = None
    max_batch: int = 64
    max_text_chars: int = 20000
    min_confidence: Optional[float] = None
    api_key: Optional[str] = None
    max_body_bytes: int = 2097152
    cors_origins: list[str] = field(default_factory=list)
    reload_interval_s: float = 0
    metrics_public: bool = False
    max_inflight_texts: int = 128
    prediction_log: Optional[str] = "predictions"
    log_text: bool = False
    log_queue_size: int = 10000
    log_rotate_mb: float = 64


@dataclass
class Monitor:
    model_uri: Optional[str] = None
    window: str = "7d"
    since: Optional[str] = None
    until: Optional[str] = None
    reference: str = "train"
    reference_rows: int = 300
    min_rows: int = 30
    report: str = "reports/monitor.html"
    log_to_mlflow: bool = True
    thresholds: dict[str, Any] = field(default_factory=dict)


@dataclass
class Spark:
    master: str = "local[*]"
    app_name: str = "ticketml-score"
    log_level: str = "WARN"
    conf: dict[str, Any] = field(default_factory=dict)


@dataclass
class Mlflow:
    tracking_uri: Optional[str] = None
    experiment_name: str = "ticketml"
    connect_timeout_s: float = 3


@dataclass
class Stack:
    dir: str = ".stack"
    db_port: int = 5433
    mlflow_port: int = 8080
    serve: bool = True


@dataclass
class Paths:
    raw_dir: str = "data/raw"
    processed_dir: str = "data/processed"
    artifacts_dir: str = "artifacts"
    checkpoints_dir: str = "checkpoints"
    plots_dir: str = "plots"


@dataclass
class Settings:
    data: Data = field(default_factory=Data)
    model: Model = field(default_factory=Model)
    preprocess: Preprocess = field(default_factory=Preprocess)
    baseline: Baseline = field(default_factory=Baseline)
    train: Train = field(default_factory=Train)
    pretrain: Pretrain = field(default_factory=Pretrain)
    tune: Tune = field(default_factory=Tune)
    export: Export = field(default_factory=Export)
    registry: Registry = field(default_factory=Registry)
    promote: Promote = field(default_factory=Promote)
    infer: Infer = field(default_factory=Infer)
    serve: Serve = field(default_factory=Serve)
    monitor: Monitor = field(default_factory=Monitor)
    spark: Spark = field(default_factory=Spark)
    mlflow: Mlflow = field(default_factory=Mlflow)
    stack: Stack = field(default_factory=Stack)
    seed: int = 42
    paths: Paths = field(default_factory=Paths)


def register() -> None:
    ConfigStore.instance().store(name="ticketml_schema", node=Settings)
