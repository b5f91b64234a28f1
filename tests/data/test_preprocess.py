import json
from pathlib import Path

import pandas as pd
import pytest

from pyfunc.text import LEGACY, clean_text, text_options
from tests.conftest import FIXTURES, run_cli
from ticketml.config import load_config
from ticketml.data.schema import transform_options
from ticketml.errors import DataError


def _outputs(workdir):
    names = [
        "data/processed/train.parquet",
        "data/processed/val.parquet",
        "data/processed/test.parquet",
        "artifacts/label_maps.json",
    ]
    return [workdir / n for n in names if (workdir / n).exists()]


def test_the_text_transform_follows_its_options():
    text = (
        "<p>Hi&nbsp;there,</p>  write to a.b@corp.com or https://x.io/a?b=1, call +1 (555) 123-4567"
    )
    defaults = transform_options(load_config())
    masks = defaults | {"mask_emails": True, "mask_urls": True, "mask_phones": True}
    assert clean_text(text, masks) == "Hi there, write to [EMAIL] or [URL] call [PHONE]"
    assert clean_text(text, defaults) == (
        "Hi there, write to a.b@corp.com or https://x.io/a?b=1, call +1 (555) 123-4567"
    )
    assert clean_text("<b>a</b>\x00b \ud800", defaults) == "a b \ufffd"
    # entities cannot smuggle NUL in
    assert clean_text("&#0;&#xD800;x", defaults) == "\ufffd\ufffdx"
    assert clean_text("<b>a</b>  b", LEGACY) == "<b>a</b>  b"  # models from before: as they served
    with pytest.raises(ValueError, match="unknown text transform option"):
        text_options(defaults | {"mask_pii": True})


def test_preprocess_keeps_the_raw_text_and_records_the_transform(workdir):
    assert run_cli("data", "data.synthetic.n_samples=300", "preprocess.text.mask_emails=true") == 0
    test = pd.read_parquet(workdir / "data/processed/test.parquet")
    assert list(test.columns[:2]) == ["raw_text", "text"]
    report = json.loads((workdir / "artifacts/data_report.json").read_text())
    options = report["text_transform"]
    assert options["mask_emails"] and not options["mask_urls"]
    assert (test["raw_text"].map(lambda t: clean_text(t, options)) == test["text"]).all()
    assert test["raw_text"].str.contains("@example.com").any()
    assert not test["text"].str.contains("@example.com").any()


def test_default_pipeline_writes_stratified_split_and_label_maps(workdir):
    assert run_cli("data", "data.synthetic.n_samples=800") == 0
    splits = {
        s: pd.read_parquet(workdir / f"data/processed/{s}.parquet")
        for s in ("train", "val", "test")
    }
    assert sum(len(s) for s in splits.values()) > 780
    assert not set(splits["train"]["text"]) & set(splits["test"]["text"])
    shares = {k: v["topic"].value_counts(normalize=True) for k, v in splits.items()}
    assert (shares["train"] - shares["test"]).abs().max() < 0.05  # stratified
    maps = json.loads((workdir / "artifacts/label_maps.json").read_text())
    assert maps["priority"] == ["low", "medium", "high"] and len(maps["topic"]) >= 6
    report = json.loads((workdir / "artifacts/data_report.json").read_text())
    assert report["leaked_texts"] == 0 and report["rows_out"] == sum(
        len(s) for s in splits.values()
    )
    assert 0.15 < report["non_english_share"] < 0.45 and set(report["language_counts"]) == {
        "en",
        "ru",
    }
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{workdir}/mlflow.db")
    run = mlflow.search_runs(experiment_names=["ticketml"]).iloc[0]
    assert run["tags.ticketml.stage"] == "preprocess" and run["metrics.leaked_texts"] == 0
    assert run["metrics.rows_out"] == report["rows_out"]
    # opened once the split is validated and written (a bad export: one ERROR line, no FAILED
    # run), so its data version is that of the split it wrote
    assert run["tags.data_version"] == report["data_version"] != "unknown"
    logged = mlflow.artifacts.download_artifacts(run_id=run["run_id"], artifact_path="data")
    assert (
        json.loads((Path(logged) / "data_report.json").read_text())["rows_in"] == report["rows_in"]
    )


def _write_raw(workdir, df, name="synthetic.csv"):
    (workdir / "data/raw").mkdir(parents=True, exist_ok=True)
    df.to_csv(workdir / "data/raw" / name, index=False)


@pytest.mark.parametrize(
    "frame, message",
    [
        (pd.DataFrame({"text": ["a b"] * 40, "priority": ["low"] * 40}), "missing column 'topic'"),
        (
            pd.DataFrame(
                {
                    "text": [f"t{i}" for i in range(5)],
                    "topic": ["x", "y"] * 2 + ["x"],
                    "priority": ["low"] * 5,
                }
            ),
            "usable rows",
        ),
        (
            pd.DataFrame({"text": [" "] * 50, "topic": ["x"] * 50, "priority": ["low"] * 50}),
            "usable rows",
        ),
    ],
)
def test_bad_input_gives_a_clear_error_and_leaves_no_output(workdir, capsys, frame, message):
    _write_raw(workdir, frame)
    assert run_cli("preprocess") == 1
    err = capsys.readouterr().err
    assert message in err and err.startswith("ERROR:")
    if "missing column" in message:
        assert "columns found: ['text', 'priority']" in err
    assert _outputs(workdir) == []
    assert not list((workdir / "data").rglob("*.tmp"))


def test_empty_file_is_a_clear_error(workdir, capsys):
    (workdir / "data/raw").mkdir(parents=True)
    (workdir / "data/raw/synthetic.csv").write_text("")
    assert run_cli("preprocess") == 1
    assert "file is empty" in capsys.readouterr().err
    assert _outputs(workdir) == []


def test_a_failed_rerun_keeps_the_previous_complete_split(workdir):
    assert run_cli("data", "data.synthetic.n_samples=300") == 0
    before = {p: p.read_bytes() for p in _outputs(workdir)}
    _write_raw(workdir, pd.DataFrame({"body": ["x"] * 50}))
    assert run_cli("preprocess") == 1
    assert {p: p.read_bytes() for p in _outputs(workdir)} == before


def test_rare_classes_are_merged_or_dropped(workdir):
    df = pd.DataFrame(
        {
            "text": [f"ticket number {i}" for i in range(60)],
            "topic": ["big"] * 50 + ["tiny1"] * 5 + ["tiny2"] * 5,
            "priority": ["low", "high"] * 30,
        }
    )
    _write_raw(workdir, df)
    assert run_cli("preprocess", "preprocess.min_class_count=8") == 0
    assert json.loads((workdir / "artifacts/label_maps.json").read_text())["topic"] == [
        "big",
        "other",
    ]
    assert (
        run_cli("preprocess", "preprocess.min_class_count=8", "preprocess.rare_class_strategy=drop")
        == 1
    )


def test_config_only_onboarding_of_a_helpdesk_export_csv_and_parquet(workdir, capsys):
    assert (
        run_cli("data", "data=helpdesk_export", f"data.path={FIXTURES / 'helpdesk_export.csv'}")
        == 0
    )
    train = pd.read_parquet(workdir / "data/processed/train.parquet")
    maps = json.loads((workdir / "artifacts/label_maps.json").read_text())
    assert maps["topic"] == [
        "account management",
        "billing and payments",
        "it support",
    ]  # legal (2 rows) dropped
    assert maps["priority"] == ["low", "medium", "high"]  # P1/1 → high etc.
    assert {"text", "topic", "priority", "language"} <= set(train.columns)
    assert not train["text"].str.contains("<p>|&nbsp;", regex=True).any()  # markup is gone,
    assert train["raw_text"].str.contains("<p>").any()  # kept in the raw text;
    assert train["text"].str.contains("https://").any()  # URLs stay (no mask by default)
    raw = pd.read_csv(FIXTURES / "helpdesk_export.csv", dtype=str, keep_default_na=False)
    raw.to_parquet(workdir / "export.parquet")
    assert (
        run_cli(
            "data",
            "data=helpdesk_export",
            "data.path=export.parquet",
            "+data.filters.language=[en]",
        )
        == 0
    )
    assert set(pd.read_parquet(workdir / "data/processed/test.parquet")["language"]) == {"en"}
    assert not (workdir / "data/raw/helpdesk_export.csv").exists()  # the parquet copy replaced it


def test_local_source_without_a_path_fails_clearly(workdir, capsys):
    assert run_cli("download_data", "data.source=local") == 1
    assert "data.path" in capsys.readouterr().err


def test_unreadable_input_is_a_data_error(workdir):
    from ticketml.io import read_table

    (workdir / "folder.csv").mkdir()
    with pytest.raises(DataError, match="is a directory"):
        read_table(workdir / "folder.csv")
