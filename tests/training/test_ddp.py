"""Multi-process (DDP) training: only rank zero logs to MLflow and writes files."""

import os
import subprocess
import sys

import mlflow
import pytest

from tests.conftest import run_cli, tiny_overrides


def test_a_rank_other_than_zero_trains_but_writes_and_logs_nothing(
    data_workdir, tiny_encoder, monkeypatch
):
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert run_cli("train", *tiny_overrides(tiny_encoder)) == 0
    assert not (data_workdir / "mlflow.db").exists()
    assert not (data_workdir / "checkpoints/best.ckpt").exists()
    assert not (data_workdir / "artifacts/metrics/multitask.json").exists()
    assert not (data_workdir / "plots").exists()


@pytest.mark.slow
def test_ddp_with_two_cpu_processes_gives_one_run_one_checkpoint_one_set_of_plots(
    data_workdir, tiny_encoder
):
    env = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "RANK", "NODE_RANK")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ticketml",
            "train",
            *tiny_overrides(tiny_encoder, epochs=2),
            "train.devices=2",
            "train.strategy=ddp",
            "train.batch_size=16",
        ],
        cwd=data_workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    mlflow.set_tracking_uri(f"sqlite:///{data_workdir}/mlflow.db")
    runs = mlflow.search_runs(experiment_names=["ticketml"])
    assert list(runs["tags.ticketml.stage"]) == ["train"]  # one run, from rank zero
    ckpts = sorted(p.name for p in (data_workdir / "checkpoints").iterdir())
    assert "best.ckpt" in ckpts and len(ckpts) == 2, ckpts  # best.ckpt + the epoch it copies
    plots = sorted(p.name for p in (data_workdir / "plots").iterdir())
    assert plots.count("loss_curve.png") == 1 and "confusion_matrix_topic.png" in plots
    assert (data_workdir / "artifacts/metrics/multitask.json").is_file()
    assert proc.stdout.count("multitask test:") == 1  # the summary is printed once
