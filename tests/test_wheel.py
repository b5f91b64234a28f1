"""The package installs like a library: a wheel built from this checkout, installed into a folder
of its own and run from a directory outside the checkout (no TICKETML_CONFIG_DIR), finds its
configs inside the package and runs `data` and `infer`."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_a_wheel_works_outside_the_checkout(exported_model, tmp_path):
    dist, site, elsewhere = tmp_path / "dist", tmp_path / "site", tmp_path / "elsewhere"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    build = [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), str(REPO)]
    subprocess.run(build, check=True, timeout=300, capture_output=True)
    wheel = next(dist.glob("ticketml-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert (
        "ticketml/configs/config.yaml" in names and "ticketml/configs/data/jira_agile.yaml" in names
    )
    assert "pyfunc/core.py" in names and not any(n.startswith("tests/") for n in names)
    install = [*pip, "install", "--no-deps", "--target", str(site), str(wheel)]
    subprocess.run(install, check=True, timeout=300, capture_output=True)
    elsewhere.mkdir()
    shutil.copytree(exported_model / "artifacts", elsewhere / "artifacts")
    env = {k: v for k, v in os.environ.items() if k != "TICKETML_CONFIG_DIR"}
    env["PYTHONPATH"] = str(site)  # ahead of the checkout's editable install

    def ticketml(*args: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "ticketml", *args]
        return subprocess.run(
            cmd, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=600
        )

    where = subprocess.run(
        [sys.executable, "-c", "import ticketml.config as c; print(c.__file__, c.config_dir())"],
        cwd=elsewhere, env=env, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert all(p.startswith(str(site)) for p in where), where
    data = ticketml("data", "data.synthetic.n_samples=300")
    assert data.returncode == 0, data.stdout[-2000:] + data.stderr[-2000:]
    assert (elsewhere / "data/processed/train.parquet").is_file()
    infer = ticketml("infer", "--text=VPN is down since this morning", "infer.model_uri=artifacts")
    assert infer.returncode == 0, infer.stderr[-2000:]
    assert set(json.loads(infer.stdout)) == {"topic", "priority", "topic_scores", "priority_scores"}
