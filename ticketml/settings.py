"""The typed shape of the configuration: Hydra composes configs/ on top of these dataclasses
(registered in its ConfigStore as `ticketml_schema`), so a key that does not exist or a value of
the wrong type is an error, never silently ignored. The YAML files hold every default and its
one-line meaning (`ticketml <command> --help` prints them); a field here is MISSING, so a value
has one place (tests/test_defaults.py). The exception is the data group (Data, Columns,
Synthetic): its defaults are here, so a new dataset's file names only what differs."""

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
    text_prefix: str = MISSING
    max_length: int = MISSING
    truncation: str = MISSING
    head_tokens: Any = MISSING  # an int or "auto"
    pooling: str = MISSING
    dropout: float = MISSING
    freeze_encoder: bool = MISSING
    loss_weights: dict[str, float] = MISSING
    class_weights: bool = MISSING
    hybrid: bool = MISSING
    combiner: str = MISSING
    neighbours: bool = MISSING
    learning_rate: float = MISSING
    gpu_learning_rate: float = MISSING
    gpu_head_learning_rate: Optional[float] = MISSING
    lexical: Any = MISSING  # true, false or auto
    lexical_learning_rate: float = MISSING
    members: int = MISSING


@dataclass
class TextTransform:
    unescape_html: bool = MISSING
    strip_tags: bool = MISSING
    mask_emails: bool = MISSING
    mask_urls: bool = MISSING
    mask_phones: bool = MISSING
    collapse_whitespace: bool = MISSING
    max_chars: int = MISSING


@dataclass
class Preprocess:
    val_size: float = MISSING
    test_size: float = MISSING
    min_rows: int = MISSING
    min_class_count: int = MISSING
    rare_class_strategy: str = MISSING
    feedback: Optional[str] = MISSING
    text: TextTransform = field(default_factory=TextTransform)
    lowercase_labels: bool = MISSING


@dataclass
class Baseline:
    word_ngram_max: int = MISSING
    char_ngram_min: int = MISSING
    char_ngram_max: int = MISSING
    word_min_df: int = MISSING
    char_min_df: int = MISSING
    max_features: int = MISSING
    C: float = MISSING
    class_weight: Optional[str] = MISSING
    max_iter: int = MISSING
    device: str = MISSING


@dataclass
class Train:
    seed: Optional[int] = MISSING  # None: the top-level seed
    max_epochs: Any = MISSING  # an int or "auto"
    batch_size: Any = MISSING  # an int or "auto"
    learning_rate: Any = MISSING  # a number or "auto"
    lr_scaling: str = MISSING
    eval_batch_size: Any = MISSING
    pad_to_multiple: Any = MISSING
    compile: bool = MISSING
    head_learning_rate: Any = MISSING  # a number, null or "auto"
    weight_decay: float = MISSING
    warmup_ratio: float = MISSING
    warmup_epochs: Optional[float] = MISSING
    lr_schedule: str = MISSING
    layer_decay: float = MISSING
    accelerator: str = MISSING
    devices: Any = MISSING
    strategy: str = MISSING
    precision: Optional[str] = MISSING
    cudnn_attention: bool = MISSING
    early_stopping_patience: Any = MISSING  # an int or "auto"
    average_top_k: int = MISSING
    max_minutes: Any = MISSING  # a number, "auto" or None
    monitor: str = MISSING
    distill_weight: float = MISSING
    baseline_product: bool = MISSING
    teacher_folds: int = MISSING
    balanced_sampling: bool = MISSING
    num_workers: int = MISSING
    limit_train_batches: Any = MISSING  # a share (0.5) or a number of batches (5)
    progress_bar: Optional[bool] = MISSING
    log_every_n_steps: int = MISSING


@dataclass
class Pretrain:
    encoder_name: str = MISSING
    output_dir: str = MISSING
    splits: list[str] = MISSING
    unlabelled_path: Optional[str] = MISSING
    max_epochs: Any = MISSING
    max_steps: Optional[int] = MISSING
    max_minutes: Optional[float] = MISSING
    batch_size: Any = MISSING
    learning_rate: float = MISSING
    weight_decay: float = MISSING
    warmup_ratio: float = MISSING
    mlm_probability: float = MISSING
    max_length: int = MISSING


@dataclass
class Tune:
    n_trials: int = MISSING
    workers: Any = MISSING
    timeout: Optional[float] = MISSING
    study_name: str = MISSING
    storage: str = MISSING
    max_epochs: Any = MISSING
    limit_train_batches: Any = MISSING
    pruner_startup_trials: int = MISSING
    pruner_warmup_epochs: int = MISSING
    heartbeat_s: int = MISSING
    retry_s: float = MISSING
    enqueue_trials: list[Any] = MISSING
    search_space: dict[str, Any] = MISSING


@dataclass
class Export:
    opset: int = MISSING
    quantize: bool = MISSING
    parity_atol: float = MISSING
    use_int8: Any = MISSING  # auto | true | false
    fp32_scores: str = MISSING  # auto | onnx


@dataclass
class Registry:
    model_name: str = MISSING


@dataclass
class Promote:
    metric: str = MISSING
    min_delta: float = MISSING
    baseline_floor: bool = MISSING
    feedback_window: Optional[str] = MISSING
    feedback_min_rows: int = MISSING


@dataclass
class Infer:
    model_uri: str = MISSING
    batch_size: int = MISSING
    chunk_size: int = MISSING
    encoding: str = MISSING
    min_confidence: Optional[float] = MISSING


@dataclass
class Serve:
    host: str = MISSING
    port: int = MISSING
    model_uri: Optional[str] = MISSING
    max_batch: int = MISSING
    max_text_chars: int = MISSING
    min_confidence: Optional[float] = MISSING
    api_key: Optional[str] = MISSING
    max_body_bytes: int = MISSING
    cors_origins: list[str] = MISSING
    reload_interval_s: float = MISSING
    metrics_public: bool = MISSING
    max_inflight_texts: int = MISSING
    prediction_log: Optional[str] = MISSING
    log_text: bool = MISSING
    log_queue_size: int = MISSING
    log_rotate_mb: float = MISSING


@dataclass
class Monitor:
    model_uri: Optional[str] = MISSING
    window: str = MISSING
    since: Optional[str] = MISSING
    until: Optional[str] = MISSING
    reference: str = MISSING
    reference_rows: int = MISSING
    min_rows: int = MISSING
    report: str = MISSING
    log_to_mlflow: bool = MISSING
    thresholds: dict[str, Any] = MISSING


@dataclass
class Spark:
    master: str = MISSING
    app_name: str = MISSING
    log_level: str = MISSING
    conf: dict[str, Any] = MISSING


@dataclass
class Mlflow:
    tracking_uri: Optional[str] = MISSING
    experiment_name: str = MISSING
    connect_timeout_s: float = MISSING


@dataclass
class Stack:
    dir: str = MISSING
    db_port: int = MISSING
    mlflow_port: int = MISSING
    serve: bool = MISSING


@dataclass
class Paths:
    raw_dir: str = MISSING
    processed_dir: str = MISSING
    artifacts_dir: str = MISSING
    checkpoints_dir: str = MISSING
    plots_dir: str = MISSING


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
    seed: int = MISSING
    paths: Paths = field(default_factory=Paths)


def register() -> None:
    ConfigStore.instance().store(name="ticketml_schema", node=Settings)
