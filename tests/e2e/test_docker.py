"""Docker for real: the API image, `mlflow models build-docker` and `docker compose` are built, run
and held to the raw-row parity every other serving path passes (tests/e2e/test_parity.py).

Needs a Docker engine and the base images the Dockerfiles start FROM (pulled, or built locally by
`make docker-base` where no registry is reachable). Skipped without them, unless
TICKETML_REQUIRE_DOCKER=1 (set by .ci/run), where a missing engine or base is a failure. Every
container, image, volume and network a test makes is removed, also when it fails; ports are
published on 127.0.0.1 only."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, free_port, run_cli, sample, wait_for
from tests.e2e.test_parity import HOSTILE_TEXTS, LONG, RAW, SURROGATE, assert_same

BASES = ("python:3.11-slim", "ghcr.io/mlflow/mlflow:v3.17.2", "postgres:16")
SOURCES = (
    "Dockerfile",
    ".dockerignore",
    "docker-compose.yaml",
    "requirements-serve.txt",
    "pyproject.toml",
    "README.md",
    "ticketml",
    "pyfunc",
    "docker",
    "scripts/postgres-init.sql",
)
ACCEPTED = [i for i in range(len(RAW)) if i not in (SURROGATE, LONG)]  # what the API scores

pytestmark = pytest.mark.slow


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args[:3])}: {proc.stderr[-3000:]}")
    return proc


def engine_problem() -> str | None:
    if not shutil.which("docker"):
        return "no docker CLI"
    try:
        if docker("info", timeout=20, check=False).returncode != 0:
            return "the Docker daemon does not answer"
    except subprocess.TimeoutExpired:
        return "the Docker daemon does not answer"
    missing = [b for b in BASES if docker("image", "inspect", b, check=False).returncode != 0]
    if missing:
        return f"base images missing: {', '.join(missing)} (pull them, or `make docker-base`)"
    return None


@pytest.fixture(scope="module", autouse=True)
def engine():
    problem = engine_problem()
    if problem:
        if os.environ.get("TICKETML_REQUIRE_DOCKER") == "1":
            pytest.fail(f"TICKETML_REQUIRE_DOCKER=1 but {problem}")
        pytest.skip(problem)


@pytest.fixture(scope="module")
def model_dir(exported_model, tmp_path_factory) -> Path:
    """The session's tiny model exported as fp32 (INT8 scores move with the batch a ticket is
    scored in, see test_parity), registered as version 1 and promoted in a SQLite store."""
    work = tmp_path_factory.mktemp("docker-model")
    for name in ("data", "artifacts", "checkpoints"):
        shutil.copytree(exported_model / name, work / name)
    cwd = os.getcwd()
    os.chdir(work)
    try:
        assert run_cli("export_onnx", "export.use_int8=false") == 0
    finally:
        os.chdir(cwd)
    return work


@pytest.fixture(scope="module")
def reference(model_dir) -> list[dict]:
    from pyfunc.core import TicketClassifier

    return TicketClassifier.from_dir(model_dir / "artifacts").predict(RAW)


def build_context(model_dir: Path, into: Path) -> Path:
    """The repository's sources with the test model as artifacts/ (.dockerignore still decides
    what `docker build` sends)."""
    for name in SOURCES:
        source, target = REPO / name, into / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.crt")
            shutil.copytree(source, target, ignore=ignore)
        else:
            shutil.copy2(source, target)
    shutil.copytree(model_dir / "artifacts", into / "artifacts")
    return into


@pytest.fixture(scope="module")
def api_image(model_dir, tmp_path_factory):
    """The project's Dockerfile built with the test model baked in; removed afterwards."""
    context = build_context(model_dir, tmp_path_factory.mktemp("api-context"))
    tag = f"ticketml-test-api:{uuid.uuid4().hex[:10]}"
    try:
        docker("build", "-q", "-t", tag, str(context), timeout=1800)
        yield tag
    finally:
        docker("rmi", "-f", tag, check=False)


def wait_http(url: str, container: str, timeout: float = 180) -> httpx.Response:
    def exited() -> str | None:
        state = docker("inspect", "--format", "{{.State.Status}}", container, check=False)
        if state.stdout.strip() != "exited":
            return None
        logs = docker("logs", container, check=False)
        return f"{container} exited: {logs.stdout[-2000:]}{logs.stderr[-2000:]}"

    return wait_for(url, timeout=timeout, gone=exited)


def predictions(base: str) -> tuple[list[dict], list[dict]]:
    single = []
    for i in ACCEPTED:
        r = httpx.post(f"{base}/predict", json={"text": RAW[i]}, timeout=60)
        assert r.status_code == 200, r.text
        single.append(r.json())
    batch = httpx.post(
        f"{base}/predict/batch", json={"texts": [RAW[i] for i in ACCEPTED]}, timeout=60
    )
    assert batch.status_code == 200, batch.text
    return single, batch.json()["predictions"]


def test_api_image_serves_raw_rows_like_the_exported_model(api_image, reference):
    name, port = f"ticketml-test-{uuid.uuid4().hex[:8]}", free_port()
    try:
        docker(
            "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8000",
            "--health-interval=1s", "--health-start-period=120s", api_image,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        ready = wait_http(f"{base}/ready", name).json()
        assert ready["model"] == "artifacts"
        single, batch = predictions(base)
        want = [reference[i] for i in ACCEPTED]
        assert_same(single, want, "API image /predict")
        assert_same(batch, want, "API image /predict/batch")
        # bad input: a 4xx with a message, and the server keeps serving
        for label, bad in [*HOSTILE_TEXTS.items(), ("null", None), ("number", 42)]:
            r = httpx.post(f"{base}/predict", json={"text": bad}, timeout=60)
            assert r.status_code == 422 and r.json()["detail"], (label, r.text)
        assert httpx.post(f"{base}/predict", json={"text": RAW[LONG]}).status_code == 413
        body = json.dumps({"text": RAW[SURROGATE]})
        r = httpx.post(
            f"{base}/predict", content=body, headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 422
        assert (
            httpx.post(
                f"{base}/predict", content=b"{", headers={"Content-Type": "application/json"}
            ).status_code
            == 422
        )
        assert httpx.post(f"{base}/predict", json={"text": RAW[0]}).status_code == 200
        # the HEALTHCHECK probes /ready: the engine calls the container healthy
        deadline = time.monotonic() + 60
        while (
            health := docker("inspect", "--format", "{{.State.Health.Status}}", name).stdout.strip()
        ) != "healthy":
            assert health == "starting" and time.monotonic() < deadline, health
            time.sleep(0.5)
        # a non-root user, and no torch in the serving image
        assert docker("exec", name, "id", "-u").stdout.strip() == "10001"
        # the image holds exactly the served files (pyfunc.bundle.copy_served in the build)
        config = json.loads(docker("exec", name, "cat", "artifacts/model_config.json").stdout)
        baked = docker("exec", name, "ls", "-A", "artifacts").stdout.split()
        assert sorted(baked) == sorted(config["files"])
        # every answered prediction is in the image's prediction log (/app/predictions)
        answered, deadline = 2 * len(ACCEPTED) + 1, time.monotonic() + 30
        written = "ticketml_prediction_log_records_total"
        while sample(metrics := httpx.get(f"{base}/metrics").text, written) != answered:
            assert time.monotonic() < deadline, metrics[-600:]
            time.sleep(0.2)
        assert sample(metrics, "ticketml_prediction_log_dropped_total", reason="write_error") == 0
        logged = docker("exec", name, "sh", "-c", "cat /app/predictions/predictions-*.jsonl")
        assert len(logged.stdout.strip().splitlines()) == answered
        no_torch = docker("exec", name, "python", "-c", "import torch", check=False)
        assert no_torch.returncode != 0 and "No module named 'torch'" in no_torch.stderr
        # `docker stop` (SIGTERM): a clean stop, exit 0, said so in the log
        docker("stop", "-t", "30", name, timeout=60)
        assert docker("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip() == "0"
        logs = docker("logs", name)
        assert "stopped by SIGTERM" in logs.stdout + logs.stderr
    finally:
        docker("rm", "-f", name, check=False)


def test_api_image_serves_a_mounted_model_over_the_baked_in_one(
    api_image, model_dir, reference, tmp_path
):
    """`-v <exported model>:/app/artifacts:ro`: the mounted folder is what serves."""
    mounted = tmp_path / "artifacts"
    shutil.copytree(model_dir / "artifacts", mounted)
    labels = json.loads((mounted / "label_maps.json").read_text())
    name, port = f"ticketml-test-{uuid.uuid4().hex[:8]}", free_port()
    try:
        docker(
            "run",
            "-d",
            "--name",
            name,
            "-p",
            f"127.0.0.1:{port}:8000",
            "-v",
            f"{mounted}:/app/artifacts:ro",
            api_image,
        )
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/ready", name)
        single, _ = predictions(base)
        assert_same(single, [reference[i] for i in ACCEPTED], "mounted model")
        assert set(single[0]["topic_scores"]) == set(labels["topic"])
    finally:
        docker("rm", "-f", name, check=False)


def test_mlflow_build_docker_serves_the_champion_like_the_exported_model(
    model_dir, reference, tmp_path
):
    """MLflow's own generated Dockerfile, unmodified, on python:<the model's version>-slim (what
    `--env-manager local` builds on; MLflow's default, virtualenv, clones pyenv from GitHub onto
    ubuntu:24.04)."""
    store = tmp_path / "registry"
    shutil.copytree(model_dir, store)
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{store}/mlflow.db"}
    cwd = os.getcwd()
    os.chdir(store)
    try:
        assert run_cli("register") == 0 and run_cli("promote", "promote.baseline_floor=false") == 0
    finally:
        os.chdir(cwd)
    tag = f"ticketml-test-mlflow:{uuid.uuid4().hex[:10]}"
    name, port = f"ticketml-test-{uuid.uuid4().hex[:8]}", free_port()
    mlflow_bin = str(Path(sys.executable).parent / "mlflow")
    try:
        built = subprocess.run(
            [mlflow_bin, "models", "build-docker", "-m", "models:/ticketml@champion", "-n", tag, "--env-manager", "local"],
            cwd=store, env=env, capture_output=True, text=True, timeout=1800,
        )  # fmt: skip
        assert built.returncode == 0, (built.stdout[-3000:], built.stderr[-3000:])
        docker("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8080", tag)
        wait_http(f"http://127.0.0.1:{port}/ping", name, timeout=300)

        def invocations(texts):
            payload = {"dataframe_split": {"columns": ["text"], "data": [[t] for t in texts]}}
            return httpx.post(
                f"http://127.0.0.1:{port}/invocations",
                content=json.dumps(payload),
                headers={"Content-Type": "application/json"},
                timeout=120,
            )

        rows = [i for i in range(len(RAW)) if i != SURROGATE]
        answer = invocations([RAW[i] for i in rows])
        assert answer.status_code == 200, answer.text
        assert_same(answer.json()["predictions"], [reference[i] for i in rows], "build-docker")
        for label, bad in [*HOSTILE_TEXTS.items(), ("null", None)]:
            refused = invocations([bad])
            assert refused.status_code == 400 and "text is" in refused.json()["message"], label
    finally:
        docker("rm", "-f", name, check=False)
        docker("rmi", "-f", tag, check=False)


def compose_cmd() -> list[str]:
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail("neither `docker compose` nor `docker-compose` is installed")


def test_compose_stack_registers_promotes_and_the_api_follows_the_champion(
    model_dir, reference, tmp_path
):
    project = build_context(model_dir, tmp_path / "project")
    name = f"ticketmltest{uuid.uuid4().hex[:8]}"
    ports = {k: free_port() for k in ("PG", "MLFLOW", "API")}
    env = {
        **os.environ,
        "TICKETML_DB_PASSWORD": uuid.uuid4().hex,
        "TICKETML_PG_PORT": str(ports["PG"]),
        "TICKETML_MLFLOW_PORT": str(ports["MLFLOW"]),
        "TICKETML_API_PORT": str(ports["API"]),
        "TICKETML_API_IMAGE": f"{name}-api",
        "TICKETML_MLFLOW_IMAGE": f"{name}-mlflow",
        "TICKETML_RELOAD_INTERVAL_S": "2",
        "TICKETML_HEALTH_INTERVAL": "2s",
        "MODEL_URI": "models:/ticketml@champion",
    }
    compose = [*compose_cmd(), "-p", name, "-f", str(project / "docker-compose.yaml")]

    def run(*args, timeout=1800):
        proc = subprocess.run(
            [*compose, *args], cwd=project, env=env, capture_output=True, text=True, timeout=timeout
        )
        assert proc.returncode == 0, (args, proc.stdout[-3000:], proc.stderr[-3000:])
        return proc

    tracking = {**env, "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{ports['MLFLOW']}"}
    api = f"http://127.0.0.1:{ports['API']}"

    def ticketml(*args):
        proc = subprocess.run(
            [sys.executable, "-m", "ticketml", *args],
            cwd=model_dir, env=tracking, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert proc.returncode == 0, (args, proc.stdout[-2000:], proc.stderr[-2000:])

    def serving(version: str, timeout: float = 120) -> dict:
        deadline, last = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            try:
                last = httpx.get(f"{api}/ready", timeout=3)
                if last.status_code == 200 and last.json().get("model_version") == version:
                    return last.json()
            except httpx.HTTPError:
                pass
            time.sleep(1)
        raise AssertionError(
            f"the API did not serve version {version} in {timeout}s: {last and last.text}"
        )

    try:
        run("up", "-d", "--build")
        # the registry is empty: the API says so instead of serving something else
        deadline = time.monotonic() + 120
        while True:
            try:
                ready = httpx.get(f"{api}/ready", timeout=3)
                if ready.status_code == 503 and ready.json()["reason"]:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the API never answered /ready"
            time.sleep(1)
        # a register and promote through the compose MLflow (artifacts proxied into its volume)
        ticketml("register")
        ticketml("promote", "promote.baseline_floor=false")
        serving("1")
        single, _ = predictions(api)
        assert_same(single, [reference[i] for i in ACCEPTED], "compose API")
        # a second version promoted: the API follows the moved @champion
        ticketml("register")
        ticketml("promote", "promote.baseline_floor=false")
        assert serving("2")["model_uri"] == "models:/ticketml@champion"
        r = httpx.post(f"{api}/predict", json={"text": RAW[0]}, timeout=60)
        assert r.status_code == 200 and r.headers["X-Model-Version"] == "2"
        # every service healthy by its own HEALTHCHECK (the API's probes /ready)
        deadline = time.monotonic() + 60
        label = f"label=com.docker.compose.project={name}"
        while True:
            ids = docker("ps", "-q", "--filter", label).stdout.split()
            health = [
                docker("inspect", "--format", "{{.State.Health.Status}}", i).stdout.strip()
                for i in ids
            ]
            if len(ids) == 3 and health == ["healthy"] * 3:
                break
            assert time.monotonic() < deadline, health
            time.sleep(1)
    finally:
        subprocess.run(
            [*compose, "down", "-v", "--remove-orphans"],
            cwd=project,
            env=env,
            capture_output=True,
            timeout=300,
        )
        for image in (env["TICKETML_API_IMAGE"], env["TICKETML_MLFLOW_IMAGE"]):
            docker("rmi", "-f", image, check=False)
    # nothing left behind
    label = f"label=com.docker.compose.project={name}"
    assert docker("ps", "-aq", "--filter", label).stdout.strip() == ""
    assert docker("volume", "ls", "-q", "--filter", label).stdout.strip() == ""
    assert docker("network", "ls", "-q", "--filter", label).stdout.strip() == ""
