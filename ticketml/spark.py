"""score_spark: batch scoring on Spark with `mlflow.pyfunc.spark_udf` (the same pyfunc model, and so
the same inference core, as every other path). Needs the `spark` extra and Java 17+.

    ticketml score_spark --input_path=tickets.parquet --output_path=scored.parquet [spark.master=...]

Writes the input columns plus the columns of batch `infer` (predicted_topic, predicted_priority,
topic_scores and priority_scores as JSON strings, needs_review with a threshold) as a Spark output
folder (part files). A local output is written beside its final path and renamed into place only
when the job succeeded.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from ticketml.errors import ConfigError, DataError
from ticketml.io import table_format

SCHEME = "://"


def flat_settings(conf: dict, prefix: str = ""):
    """Spark settings from YAML keys with dots or from nested overrides
    (`+spark.conf.spark.executor.memory=4g`) alike: ("spark.executor.memory", "4g")."""
    for key, value in conf.items():
        if isinstance(value, dict):
            yield from flat_settings(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def spark_session(cfg: DictConfig):
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise ConfigError(
            "score_spark needs pyspark: pip install -e '.[spark]' (and Java 17+, "
            "e.g. apt-get install openjdk-17-jre-headless)"
        ) from exc
    if not shutil.which("java") and not os.environ.get("JAVA_HOME"):
        raise ConfigError(
            "score_spark needs Java 17+ on PATH or JAVA_HOME (apt-get install openjdk-17-jre-headless)"
        )
    builder = SparkSession.builder.master(cfg.spark.master).appName(cfg.spark.app_name)
    for key, value in flat_settings(OmegaConf.to_container(cfg.spark.conf or {})):
        builder = builder.config(key, str(value).lower() if isinstance(value, bool) else str(value))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(cfg.spark.log_level)
    return spark


def scores_json_udf(labels: list[str]):
    """Scores map → the JSON string batch `infer` writes: same function, same label order (a Spark
    map does not keep its keys' order), same bytes."""
    from pyspark.sql import functions as F

    from ticketml.infer import scores_json

    return F.udf(lambda scores: scores_json({k: scores[k] for k in labels}), "string")


def label_order(model_uri: str) -> dict[str, list[str]]:
    """The model's label maps (the order of the score columns), read from its artifacts."""
    import json

    import mlflow

    from pyfunc.bundle import registered_path

    path = mlflow.artifacts.download_artifacts(
        f"{model_uri.rstrip('/')}/{registered_path('label_maps')}"
    )
    return json.loads(Path(path).read_text())


def table_paths(input_path: str | None, output_path: str | None) -> tuple[str, str, str, str]:
    """(input format, output format, input path, output path): local paths made absolute (the
    JVM resolves relative ones against its own start folder); a missing input is an error."""
    if not input_path or not output_path:
        raise DataError("give --input_path=FILE_OR_FOLDER and --output_path=FOLDER")
    in_kind, out_kind = table_format(input_path), table_format(output_path)
    if SCHEME not in input_path:
        if not Path(input_path).exists():
            raise DataError(f"{input_path}: no such file or folder")
        input_path = str(Path(input_path).resolve())
    if SCHEME not in output_path:
        output_path = str(Path(output_path).resolve())
    return in_kind, out_kind, input_path, output_path


def score_frame(spark, df, uri: str, text_column: str, threshold: float | None):
    """`df` with the model's predicted labels and scores (JSON, in the model's label order)
    beside its own columns, and `needs_review` where a review threshold is set."""
    import mlflow
    from pyspark.sql import functions as F

    if text_column not in df.columns:
        raise DataError(
            f"missing column {text_column!r} (columns found: {df.columns}); set --text_column"
        )
    result_type = (
        "topic string, priority string, "
        "topic_scores map<string, double>, priority_scores map<string, double>"
    ) + (", needs_review boolean" if threshold is not None else "")
    predict = mlflow.pyfunc.spark_udf(
        spark,
        uri,
        result_type=result_type,
        env_manager="local",
        params=None if threshold is None else {"min_confidence": float(threshold)},
    )
    labels = label_order(uri)
    text = F.coalesce(F.col(text_column).cast("string"), F.lit(""))
    scored = df.withColumn("_pred", predict(text.alias("text")))
    return scored.select(
        *[F.col(c) for c in df.columns],
        F.col("_pred.topic").alias("predicted_topic"),
        F.col("_pred.priority").alias("predicted_priority"),
        scores_json_udf(labels["topic"])("_pred.topic_scores").alias("topic_scores"),
        scores_json_udf(labels["priority"])("_pred.priority_scores").alias("priority_scores"),
        *([F.col("_pred.needs_review").alias("needs_review")] if threshold is not None else []),
    )


def write_table(spark, scored, output_path: str, out_kind: str, input_path: str) -> int:
    """Write `scored` to `output_path` (a local one beside it first, renamed when complete:
    a failed or killed write leaves nothing half-written); the rows written."""
    writer_target = output_path
    if SCHEME not in output_path:  # local: write beside, rename when complete
        final = Path(output_path)
        final.parent.mkdir(parents=True, exist_ok=True)
        writer_target = str(final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.tmp"))
    try:
        writer = scored.write.mode("overwrite").format(out_kind)
        if out_kind == "csv":  # RFC 4180 quoting ("" inside quotes), as pandas reads and writes
            writer = writer.option("header", True).option("escape", '"')
        try:
            writer.save(writer_target)
        except Exception as exc:  # noqa: BLE001 - a refused text is a data error, said plainly
            from pyfunc.inputs import REFUSAL

            refused = REFUSAL.search(str(exc))
            if not refused:
                raise
            raise DataError(
                f"{input_path}: a text the model refuses ({refused.group(0)}); "
                "`ticketml infer` names its row"
            ) from exc
        rows = spark.read.format(out_kind).option("header", True).load(writer_target).count()
        if writer_target != output_path:
            if Path(output_path).is_dir():
                shutil.rmtree(output_path)
            elif Path(output_path).exists():
                Path(output_path).unlink()
            os.replace(writer_target, output_path)
    finally:
        if writer_target != output_path and Path(writer_target).exists():
            shutil.rmtree(writer_target, ignore_errors=True)
    return rows


def run_score_spark(
    cfg: DictConfig,
    input_path: str | None = None,
    output_path: str | None = None,
    model_uri: str | None = None,
    text_column: str = "text",
    min_confidence: str | None = None,
) -> int:
    import mlflow

    from ticketml.infer import review_threshold
    from ticketml.tracking import reach

    in_kind, out_kind, input_path, output_path = table_paths(input_path, output_path)
    threshold = review_threshold(cfg, min_confidence)
    uri = model_uri or cfg.infer.model_uri
    mlflow.set_tracking_uri(reach(cfg))
    spark = spark_session(cfg)
    reader = spark.read.option("header", True) if in_kind == "csv" else spark.read
    df = reader.format(in_kind).load(input_path)
    scored = score_frame(spark, df, uri, text_column, threshold)
    rows = write_table(spark, scored, output_path, out_kind, input_path)
    logged = log_predictions(cfg, spark, out_kind, output_path, text_column, uri)
    print(
        f"score_spark: {rows} rows → {output_path}/ (model: {uri}, master: {cfg.spark.master}"
        f"{logged})"
    )
    return rows


def log_predictions(cfg, spark, kind: str, scored_path: str, text_column: str, uri: str) -> str:
    """The scored rows into the prediction log (serve.prediction_log, a folder): JSON lines under
    `<log>/spark-<batch id>/`, one record per row as the service writes them (ids `<batch id>:<n>`;
    the unknown-word share is left out: it needs the model's vocabulary on the executors).
    Written from the saved output, so the model does not score the rows a second time."""
    from pyspark.sql import functions as F

    from ticketml.monitoring.features import detect_language
    from ticketml.monitoring.store import is_database, new_request_id, now_iso
    from ticketml.predictor import ModelSource

    target = cfg.serve.prediction_log
    if not target:
        return ""
    if is_database(target) or SCHEME in str(target):
        print(f"score_spark: predictions not logged: the Spark log is a local folder, not {target}")
        return ""
    identity = ModelSource(cfg, uri).current()
    batch_id = new_request_id()
    df = spark.read.format(kind).option("header", True).option("escape", '"').load(scored_path)
    text = F.coalesce(F.col(text_column).cast("string"), F.lit(""))
    scores = "map<string, double>"
    topic_scores = F.from_json("topic_scores", scores)
    priority_scores = F.from_json("priority_scores", scores)
    columns = [
        F.concat(F.lit(f"{batch_id}:"), F.monotonically_increasing_id()).alias("request_id"),
        F.lit(now_iso()).alias("time"),
        F.lit("spark").alias("source"),
        F.lit(identity.uri).alias("model_uri"),
        F.lit(identity.name).cast("string").alias("model_name"),
        F.lit(identity.version).cast("string").alias("model_version"),
        F.lit(identity.run_id).cast("string").alias("run_id"),
        F.col("predicted_topic").alias("topic"),
        F.col("predicted_priority").alias("priority"),
        topic_scores[F.col("predicted_topic")].alias("topic_score"),
        priority_scores[F.col("predicted_priority")].alias("priority_score"),
        topic_scores.alias("topic_scores"),
        priority_scores.alias("priority_scores"),
        (F.col("needs_review").cast("boolean") if "needs_review" in df.columns else F.lit(None))
        .cast("boolean")
        .alias("needs_review"),
        F.sha2(F.trim(F.regexp_replace(text, r"(?U)\s+", " ")), 256).alias("text_sha256"),
        F.length(text).alias("text_chars"),
        F.udf(detect_language, "string")(text).alias("language"),
        (text if cfg.serve.log_text else F.lit(None).cast("string")).alias("text"),
    ]
    folder = Path(target) / f"spark-{batch_id}"
    df.select(*columns).write.mode("errorifexists").json(str(folder.resolve()))
    return f"; logged to {folder}/"
