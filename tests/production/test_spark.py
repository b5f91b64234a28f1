"""score_spark (mlflow.pyfunc.spark_udf on local[2]) writes exactly what batch `infer` writes.

Needs the `spark` extra and Java 17+. Without them the test is skipped, unless
TICKETML_REQUIRE_SPARK=1 (set by .ci/run), where a missing Spark is a failure."""

import importlib.util
import os
import shutil

import pandas as pd
import pytest

from tests.conftest import run_cli

HAVE_SPARK = importlib.util.find_spec("pyspark") is not None and bool(
    shutil.which("java") or os.environ.get("JAVA_HOME")
)
if not HAVE_SPARK and os.environ.get("TICKETML_REQUIRE_SPARK") != "1":
    pytest.skip(
        "pyspark or Java missing (pip install -e '.[spark]'; Java 17+)", allow_module_level=True
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "src, dst", [("in.parquet", "spark_out.parquet"), ("in.csv", "spark_out.csv")]
)
def test_spark_udf_scores_equal_batch_infer(export_workdir, src, dst, capsys):
    assert run_cli("register") == 0 and run_cli("promote", "promote.baseline_floor=false") == 0
    rows = pd.concat([pd.read_parquet(export_workdir / "data/processed/test.parquet")] * 3)
    rows = rows.reset_index(drop=True).assign(ticket_id=lambda d: [f"T{i}" for i in range(len(d))])
    if src.endswith(".csv"):
        rows.to_csv(export_workdir / src, index=False)
    else:
        rows.to_parquet(export_workdir / src, index=False)
    assert run_cli("infer", f"--input_path={src}", "--output_path=infer_out.parquet") == 0
    assert (
        run_cli(
            "score_spark",
            f"--input_path={src}",
            f"--output_path={dst}",
            "spark.master='local[2]'",
            "--min_confidence=0.9",
        )
        == 0
    )
    if dst.endswith(".csv"):
        spark = pd.concat(
            pd.read_csv(p, dtype=str, keep_default_na=False)
            for p in sorted((export_workdir / dst).glob("part-*.csv"))
        )
    else:
        spark = pd.read_parquet(export_workdir / dst)
    infer = pd.read_parquet(export_workdir / "infer_out.parquet")
    assert len(spark) == len(infer) == len(rows) == 270
    spark = spark.set_index("ticket_id").loc[infer["ticket_id"]].reset_index()
    for column in ("predicted_topic", "predicted_priority", "topic_scores", "priority_scores"):
        assert spark[column].tolist() == infer[column].tolist(), column
    assert spark["needs_review"].astype(str).str.lower().isin(["true", "false"]).all()
    assert not list(export_workdir.glob(".spark_out*"))  # no temp folder left
    # both logged every row to the prediction log (serve.prediction_log=predictions), alike
    from ticketml.monitoring.store import read_records

    logged = read_records("predictions")
    by_source = {k: v.set_index("text_sha256") for k, v in logged.groupby("source")}
    assert len(by_source["spark"]) == len(by_source["infer"]) == 270
    spark_log, infer_log = (by_source[k].sort_index() for k in ("spark", "infer"))
    assert spark_log.index.tolist() == infer_log.index.tolist()  # Spark hashes texts the same
    for column in ("topic", "priority", "language", "text_chars", "model_version"):
        assert spark_log[column].tolist() == infer_log[column].tolist(), column
    assert spark_log["model_version"].eq("1").all()
    assert spark_log["topic_score"].round(6).tolist() == infer_log["topic_score"].round(6).tolist()
    assert spark_log["needs_review"].isin([True, False]).all()
    if dst.endswith(".csv"):
        return
    # a text the model refuses (pyfunc.inputs) stops the job with one clear line, nothing written
    rows.loc[5, "text"] = " "
    rows.to_parquet(export_workdir / "bad.parquet", index=False)
    assert run_cli("score_spark", "--input_path=bad.parquet", "--output_path=bad_out.parquet") == 1
    assert "a text the model refuses (text" in capsys.readouterr().err
    assert not (export_workdir / "bad_out.parquet").exists()
    assert not list(export_workdir.glob(".bad_out*"))


@pytest.mark.slow  # starts Spark: over 10 s on 2 cores
def test_missing_text_column_fails_clearly_and_writes_nothing(export_workdir, capsys):
    pd.DataFrame({"body": ["VPN down"]}).to_parquet(export_workdir / "nobody.parquet")
    args = ["--input_path=nobody.parquet", "--output_path=o.parquet", "spark.master='local[1]'"]
    assert run_cli("score_spark", *args, "infer.model_uri=artifacts") == 1
    assert "missing column 'text'" in capsys.readouterr().err
    assert not (export_workdir / "o.parquet").exists()
