"""MLflow's own environment handling, not `--env-manager local`: `mlflow run .` builds the
project's python_env (virtualenv) and `mlflow models serve` the model's own environment.

They install packages (network to the package index; pip's local torch file here), so they are
slow; CI runs them."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, free_port, run_cli, spawn, wait_for

MLFLOW = str(Path(sys.executable).parent / "mlflow")


def isolated_env(tmp_path: Path) -> dict[str, str]:
    """Environment variables for an MLflow-managed env: its own env root, no active venv."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["MLFLOW_ENV_ROOT"] = str(tmp_path / "mlflow-envs")
    return env


@pytest.mark.slow
def test_mlflow_run_builds_the_projects_python_env(tmp_path):
    project = tmp_path / "project"
    files = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    for name in files:
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, project / name, follow_symlinks=False)  # configs/: a link
    env = isolated_env(tmp_path)
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{project}/mlflow.db"
    proc = subprocess.run(
        [
            MLFLOW,
            "run",
            str(project),
            "-e",
            "data",
            "--env-manager",
            "virtualenv",
            "--experiment-name",
            "ticketml",
            "-P",
            "overrides=data.synthetic.n_samples=300",
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=3000,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert (project / "data/processed/train.parquet").is_file()
    envs = list((tmp_path / "mlflow-envs").iterdir())
    assert len(envs) == 1  # the project's own virtualenv, not the one running the tests
    assert (envs[0] / "bin/ticketml").exists()


@pytest.mark.slow
def test_mlflow_models_serve_in_the_models_own_environment(export_workdir, tmp_path):
    assert run_cli("register") == 0 and run_cli("promote", "promote.baseline_floor=false") == 0
    env = isolated_env(tmp_path)
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{export_workdir}/mlflow.db"
    port = free_port()
    server = spawn(
        [
            MLFLOW,
            "models",
            "serve",
            "-m",
            "models:/ticketml@champion",
            "--env-manager",
            "virtualenv",
            "-p",
            str(port),
            "-h",
            "127.0.0.1",
        ],
        cwd=export_workdir,
        env=env,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/ping", server, timeout=1800)
        texts = ["VPN is down again", "Двойное списание"]
        answer = httpx.post(
            f"http://127.0.0.1:{port}/invocations",
            json={"dataframe_split": {"columns": ["text"], "data": [[t] for t in texts]}},
            timeout=120,
        )
        assert answer.status_code == 200, answer.text
        from pyfunc.core import TicketClassifier

        want = TicketClassifier.from_dir(export_workdir / "artifacts").predict(texts)
        got = answer.json()["predictions"]
        assert [g["topic"] for g in got] == [w["topic"] for w in want]
        envs = [p for p in (tmp_path / "mlflow-envs").iterdir() if p.is_dir()]
        assert envs, "no model environment was created"
        installed = subprocess.run(
            [str(envs[0] / "bin/python"), "-m", "pip", "list", "--format=json"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        names = {p["name"].lower() for p in json.loads(installed)}
        assert {"onnxruntime", "tokenizers", "mlflow-skinny"} <= names and "torch" not in names
        assert "mlflow" not in names and "scikit-learn" not in names  # not MLflow's server stack
    finally:
        server.terminate()
        server.wait(timeout=60)
