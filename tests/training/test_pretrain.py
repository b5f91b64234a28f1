"""`ticketml pretrain` (task-adaptive masked-LM training) and its lineage into `train`."""

import json

import mlflow
import pandas as pd
import pytest

from tests.conftest import run_cli, tiny_overrides
from ticketml.training.pretrain import mask_tokens


def test_masking_predicts_about_p_of_the_real_tokens_and_never_special_ones():
    import torch

    ids = torch.randint(1000, 2000, (64, 100))
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[:, 0] = special[:, -10:] = True  # [CLS] and padding
    inputs, labels = mask_tokens(ids, special, 103, 30522, 0.15, torch.Generator().manual_seed(0))
    chosen = labels != -100
    assert not chosen[special].any()
    assert 0.13 < chosen.float().sum() / (~special).sum() < 0.17
    assert (labels[chosen] == ids[chosen]).all()
    masked = (inputs == 103) & chosen
    assert 0.75 < masked.sum() / chosen.sum() < 0.85  # 80% [MASK], 10% random, 10% kept
    assert (inputs[~chosen] == ids[~chosen]).all()


@pytest.mark.slow  # end to end: over 10 s on 2 cores
def test_pretrain_adapts_the_encoder_logs_it_and_train_records_the_lineage(
    data_workdir, tiny_encoder, capsys
):
    extra = pd.DataFrame({"text": [f"printer {i} jams on tray {i % 3}" for i in range(40)]})
    extra.to_csv(data_workdir / "unlabelled.csv", index=False)
    args = [
        f"model.encoder_name={tiny_encoder}",
        "train.accelerator=cpu",
        "pretrain.max_epochs=5",
        "pretrain.max_steps=60",
        "pretrain.learning_rate=3e-3",
        "pretrain.max_length=64",
        "pretrain.unlabelled_path=unlabelled.csv",
    ]
    assert run_cli("pretrain", *args) == 0
    out = data_workdir / "encoders/tapt"
    lineage = json.loads((out / "pretrain.json").read_text())
    assert lineage["source_encoder"] == tiny_encoder and lineage["steps"] == 60
    train, val = (
        pd.read_parquet(data_workdir / f"data/processed/{s}.parquet") for s in ("train", "val")
    )
    assert lineage["texts"] == len(set(train["text"]) | set(val["text"])) + 40  # test left out
    assert lineage["held_out_mlm_loss_after"] < lineage["held_out_mlm_loss_before"] - 0.5
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {f.name for f in out.iterdir()}
    assert not (data_workdir / "encoders/tapt.tmp").exists()
    mlflow.set_tracking_uri(f"sqlite:///{data_workdir}/mlflow.db")
    runs = mlflow.search_runs(experiment_names=["ticketml"])
    run = runs[runs["tags.ticketml.stage"] == "pretrain"].iloc[0]
    assert run["run_id"] == lineage["run_id"]
    assert run["metrics.held_out_mlm_loss_after"] == lineage["held_out_mlm_loss_after"]
    assert run["tags.pretrain.source_encoder"] == tiny_encoder
    logged = {a.path for a in mlflow.MlflowClient().list_artifacts(run["run_id"], "encoder")}
    assert "encoder/model.safetensors" in logged and "encoder/pretrain.json" in logged
    inputs = mlflow.get_run(run["run_id"]).inputs.dataset_inputs
    assert sorted(i.tags[0].value for i in inputs) == ["training", "validation"]

    overrides = [*tiny_overrides(tiny_encoder), "model.encoder_name=encoders/tapt"]
    assert run_cli("train", *overrides) == 0
    runs = mlflow.search_runs(experiment_names=["ticketml"])
    trained = runs[runs["tags.ticketml.stage"] == "train"].iloc[0]
    assert trained["tags.encoder.pretrain_run_id"] == lineage["run_id"]
    assert trained["tags.encoder.sha256"] == lineage["encoder_sha256"]


def test_pretrain_refuses_what_it_cannot_use(data_workdir, tiny_encoder, capsys):
    assert (
        run_cli(
            "pretrain", f"model.encoder_name={tiny_encoder}", "pretrain.unlabelled_path=nope.csv"
        )
        == 1
    )
    assert "pretrain.unlabelled_path=nope.csv: no such file" in capsys.readouterr().err
    pd.DataFrame({"body": ["x"] * 30}).to_csv(data_workdir / "other.csv", index=False)
    assert (
        run_cli(
            "pretrain", f"model.encoder_name={tiny_encoder}", "pretrain.unlabelled_path=other.csv"
        )
        == 1
    )
    assert "missing text column 'text'" in capsys.readouterr().err
    assert (
        run_cli(
            "pretrain", f"model.encoder_name={tiny_encoder}", f"pretrain.output_dir={tiny_encoder}"
        )
        == 1
    )
    assert "is the source encoder" in capsys.readouterr().err
    assert not (data_workdir / "encoders").exists()
