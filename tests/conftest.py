"""Shared fixtures: every test runs in its own working directory with a local MLflow store."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tools.loopback import free_port  # noqa: F401 - one free-port helper, re-exported for tests

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
VENV_BIN = str(Path(sys.executable).parent)

# Under xdist (`make test-fast`: two workers on two cores) each worker's torch and BLAS take their
# share of the cores, set before either is imported: their default, a thread per core in every
# worker, puts twice as many busy threads as cores on the machine.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    _share = (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, _share)))


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)  # mlflow.set_experiment exports it
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    monkeypatch.setenv("CI", "true")  # quiet progress bars
    monkeypatch.setenv("PATH", VENV_BIN + os.pathsep + os.environ.get("PATH", ""))
    monkeypatch.setenv("TICKETML_CONFIG_DIR", str(REPO / "configs"))


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """An empty working directory (every command writes relative to the cwd)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_cli(*args: str) -> int:
    from ticketml.cli import main

    return main(list(args))


def run_cli_subprocess(*args: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ticketml", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def prepared_data(tmp_path_factory) -> Path:
    """A working directory with a small processed synthetic split (built once per session)."""
    from ticketml.cli import main

    base = tmp_path_factory.mktemp("prepared")
    cwd = os.getcwd()
    os.chdir(base)
    try:
        assert main(["data", "data.synthetic.n_samples=600"]) == 0
    finally:
        os.chdir(cwd)
    return base


@pytest.fixture
def data_workdir(prepared_data, workdir) -> Path:
    """A fresh copy of the prepared data in this test's working directory."""
    for name in ("data", "artifacts"):
        shutil.copytree(prepared_data / name, workdir / name)
    return workdir


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory) -> str:
    """A tiny randomly initialised BERT with the shipped MiniLM tokenizer (fast CPU tests)."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from ticketml.encoder import resolve_encoder

    path = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(resolve_encoder("minilm"))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    import torch

    torch.manual_seed(0)
    BertModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def needs(installed: bool, require_env: str, reason: str):
    """Skip where an optional part is not installed, unless `require_env`=1 (set by .ci/run,
    where a missing part must fail, not skip)."""
    return pytest.mark.skipif(not installed and os.environ.get(require_env) != "1", reason=reason)


def prepared_encoder(tmp_path_factory, name: str):
    """`ticketml encoder prepare <name>` into a fresh encoder cache, set for the tests using it
    (a module-scoped fixture yields from this)."""
    cache = tmp_path_factory.mktemp("encoders")
    os.environ["TICKETML_ENCODER_CACHE"] = str(cache)
    try:
        assert run_cli("encoder", "prepare", name) == 0
        yield cache
    finally:
        del os.environ["TICKETML_ENCODER_CACHE"]


def first_val_batch(overrides: list[str]) -> tuple:
    """(the datamodule of these overrides, set up; its first val batch)."""
    from ticketml.config import load_config
    from ticketml.training.train import build_datamodule

    dm = build_datamodule(load_config(overrides))
    dm.setup()
    return dm, next(iter(dm.val_dataloader()))


def tiny_overrides(encoder: str, epochs: int = 1) -> list[str]:
    return [
        f"model.encoder_name={encoder}",
        f"train.max_epochs={epochs}",
        "train.accelerator=cpu",
        "train.learning_rate=1e-3",
        "train.batch_size=32",
        "model.max_length=64",
    ]


@pytest.fixture(scope="session")
def exported_model(prepared_data, tiny_encoder, tmp_path_factory) -> Path:
    """A working directory with a tiny model trained, exported to ONNX (+INT8) and evaluated."""
    from ticketml.cli import main

    base = tmp_path_factory.mktemp("exported")
    for name in ("data", "artifacts"):
        shutil.copytree(prepared_data / name, base / name)
    cwd, uri = os.getcwd(), os.environ.get("MLFLOW_TRACKING_URI")
    os.chdir(base)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{base}/mlflow.db"  # its runs: base/mlflow.db
    try:
        assert main(["baseline", "baseline.max_features=3000"]) == 0
        assert main(["train", *tiny_overrides(tiny_encoder, epochs=3)]) == 0
        assert main(["export_onnx"]) == 0
    finally:
        os.chdir(cwd)
        if uri is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = uri
    return base


@pytest.fixture
def export_workdir(exported_model, workdir) -> Path:
    for name in ("data", "artifacts", "checkpoints"):
        shutil.copytree(exported_model / name, workdir / name)
    return workdir


def weigh_training_votes(artifacts: Path, train) -> dict:
    """An exported bundle made to serve the training tickets' votes (model.neighbours), whether
    or not its own pool's gate kept them: neighbours.npz built over `train` (the texts the
    baseline was fitted on), hybrid.json's topic a pool in which the votes decide, the smoke
    examples (the blend's answers) removed. Returns the new hybrid.json."""
    from pyfunc.bundle import FILES
    from pyfunc.tfidf import TfidfClassifier
    from ticketml.hybrid import build_neighbours

    maps = json.loads((artifacts / FILES["label_maps"]).read_text())
    features = TfidfClassifier.load(artifacts / FILES["baseline"]).features
    build_neighbours(features, train, maps).save(artifacts / FILES["neighbours"])
    hybrid = json.loads((artifacts / FILES["hybrid"]).read_text())
    pool = {"method": "pool", "transformer_weight": 0.1, "baseline_weight": 0.1}
    hybrid["topic"] = pool | {"neighbour_weight": 20.0, "neighbours": {"k": 5, "temperature": 0.05}}
    (artifacts / FILES["hybrid"]).write_text(json.dumps(hybrid))
    (artifacts / FILES["smoke"]).unlink(missing_ok=True)
    return hybrid


def spawn(cmd: list[str], cwd=None, env=None) -> subprocess.Popen:
    """A server (or worker) process for a test: its stdout and stderr together, as text, for
    `wait_for` to show when it exits early and for the test's own assertions."""
    return subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def wait_for(
    url: str,
    proc: subprocess.Popen | None = None,
    timeout: float = 120,
    status: int = 200,
    gone=None,
):
    """Poll `url` until it answers `status`, or the server is gone (`proc` exited, or `gone()`
    says why, e.g. a container that exited) or time runs out."""
    import time

    import httpx

    def exited() -> str | None:
        if proc is None or proc.poll() is None:
            return None
        return f"server exited with {proc.returncode}: {proc.stdout.read() if proc.stdout else ''}"

    gone = gone or exited
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if why := gone():
            raise AssertionError(why)
        try:
            last = httpx.get(url, timeout=2)
            if last.status_code == status:
                return last
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} did not answer {status} in {timeout}s (last: {last})")


def sample(exposition: str, metric: str, /, **labels: str) -> float | None:
    """The sum of the samples called `metric` whose labels include `labels`, in a Prometheus
    exposition (parsed by prometheus_client's own parser); None when there is none."""
    from prometheus_client.parser import text_string_to_metric_families

    values = [
        s.value
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
        if s.name == metric and labels.items() <= s.labels.items()
    ]
    return sum(values) if values else None
