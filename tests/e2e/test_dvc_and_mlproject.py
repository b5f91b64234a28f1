import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from tests.conftest import REPO, run_cli

DVC = str(Path(sys.executable).parent / "dvc")


def _run(*cmd, cwd):
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.mark.slow
def test_dvc_round_trip_through_the_default_remote_and_download_data_pulls(workdir):
    _run("git", "init", "-q", cwd=workdir)
    shutil.copytree(REPO / ".dvc", workdir / ".dvc", ignore=shutil.ignore_patterns("tmp", "cache"))
    assert run_cli("download_data", "data.synthetic.n_samples=200") == 0
    raw = workdir / "data/raw/synthetic.csv"
    original = raw.read_bytes()
    _run(DVC, "add", "data/raw/synthetic.csv", cwd=workdir)
    _run(DVC, "push", cwd=workdir)
    assert (workdir / ".dvc-storage").is_dir()  # the shipped remote: a folder beside .dvc/
    raw.unlink()
    shutil.rmtree(workdir / ".dvc/cache")
    _run(DVC, "pull", cwd=workdir)
    assert raw.read_bytes() == original
    raw.unlink()
    shutil.rmtree(workdir / ".dvc/cache")
    assert run_cli("download_data") == 0  # auto: no local path → dvc pull, no synthetic fallback
    assert raw.read_bytes() == original
    assert '"source": "dvc"' in (workdir / "data/raw/synthetic.source.json").read_text()


@pytest.mark.slow
def test_mlflow_run_data_and_baseline_entry_points(workdir):
    shutil.copytree(
        REPO,
        workdir / "proj",
        ignore=shutil.ignore_patterns(
            ".venv",
            ".git",
            "data",
            "artifacts",
            "mlruns",
            "mlflow.db",
            "plots",
            "checkpoints",
            "*.egg-info",
        ),
    )
    proj = workdir / "proj"
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{proj}/mlflow.db"}
    import os

    env = {**os.environ, **env}
    for entry, params in (
        ("data", "data.synthetic.n_samples=500 seed=3"),
        ("baseline", "baseline.C=2.0"),
    ):
        proc = subprocess.run(
            [
                str(Path(sys.executable).parent / "mlflow"),
                "run",
                ".",
                "-e",
                entry,
                "--env-manager",
                "local",
                "-P",
                f"overrides={params}",
            ],
            cwd=proj,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert len(pd.read_parquet(proj / "data/processed/train.parquet")) == 350
    assert (proj / "artifacts/metrics/baseline.json").is_file()
    mlflow.set_tracking_uri(f"sqlite:///{proj}/mlflow.db")
    runs = mlflow.search_runs(experiment_names=["Default"])
    child = runs[runs["tags.ticketml.stage"] == "baseline"]
    assert len(child) == 1 and child.iloc[0]["params.baseline.C"] == "2.0"
    assert child.iloc[0]["tags.mlflow.parentRunId"] in set(runs["run_id"])
