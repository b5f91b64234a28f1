"""The Docker images a user builds: size, build time, cold start and memory, side by side.

    python bench/docker_images.py                 # after `make demo`: artifacts/ and mlflow.db here
    python bench/docker_images.py --workdir DIR   # another working directory (its artifacts/, mlflow.db)

Builds the project's API image (`Dockerfile`, the working directory's artifacts/ baked in) and
MLflow's own image of the champion (`mlflow models build-docker --env-manager local`), then runs
each `--runs` times: seconds from `docker run` to the first 200 on its readiness URL (/ready,
/ping), the first prediction's latency and the container's memory after it. Needs the base
images (pulled, or `make docker-base`). Prints a table and writes bench/results/docker_images.json.
The images are removed afterwards unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import machine_info, write_result  # noqa: E402
from tools.loopback import free_port  # noqa: E402

SOURCES = ("Dockerfile", ".dockerignore", "requirements-serve.txt", "pyproject.toml", "README.md",
           "ticketml", "pyfunc", "docker")  # fmt: skip
TEXT = "VPN keeps disconnecting every hour since the update, error 809 in the log"


def docker(*args: str, timeout: float = 1800) -> str:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if proc.returncode:
        raise SystemExit(f"docker {' '.join(args[:2])} failed: {proc.stderr[-2000:]}")
    return proc.stdout.strip()


def post(url: str, body: dict) -> float:
    started = time.perf_counter()
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        assert response.status == 200, response.status
    return time.perf_counter() - started


def cold_start(image: str, port_inside: int, ready: str, predict: tuple[str, dict]) -> dict:
    port, name = free_port(), f"ticketml-bench-{os.getpid()}-{time.monotonic_ns()}"
    started = time.perf_counter()
    docker("run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:{port_inside}", image)
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{ready}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.perf_counter() - started > 600:
                raise SystemExit(f"{image} not ready in 600 s")
            time.sleep(0.2)
        ready_s = time.perf_counter() - started
        first = post(f"http://127.0.0.1:{port}{predict[0]}", predict[1])
        memory = docker("stats", "--no-stream", "--format", "{{.MemUsage}}", name).split(" / ")[0]
        return {"ready_s": ready_s, "first_predict_s": first, "memory_after": memory}
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)


def build_api(workdir: Path, tag: str) -> float:
    with tempfile.TemporaryDirectory(prefix="ticketml-docker-") as tmp:
        context = Path(tmp)
        for name in SOURCES:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(
                    source, context / name, ignore=shutil.ignore_patterns("__pycache__")
                )
            else:
                shutil.copy2(source, context / name)
        shutil.copytree(workdir / "artifacts", context / "artifacts")
        started = time.perf_counter()
        docker("build", "-q", "-t", tag, str(context))
        return time.perf_counter() - started


def build_mlflow(workdir: Path, tag: str) -> float:
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{workdir / 'mlflow.db'}"}
    mlflow = str(Path(sys.executable).parent / "mlflow")
    started = time.perf_counter()
    proc = subprocess.run(
        [mlflow, "models", "build-docker", "-m", "models:/ticketml@champion", "-n", tag,
         "--env-manager", "local"],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=3600,
    )  # fmt: skip
    if proc.returncode:
        raise SystemExit(f"mlflow models build-docker failed: {proc.stderr[-3000:]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=ROOT)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the images it built")
    parser.add_argument("--out", default=ROOT / "bench" / "results" / "docker_images.json")
    args = parser.parse_args()
    images = {
        "api": {
            "what": "Dockerfile: FastAPI + ONNX Runtime core, mlflow-skinny, model baked in",
            "tag": "ticketml-bench-api:latest",
            "build": build_api,
            "port": 8000,
            "ready": "/ready",
            "predict": ("/predict", {"text": TEXT}),
        },
        "mlflow_build_docker": {
            "what": "mlflow models build-docker --env-manager local (MLflow's Dockerfile, nginx + uvicorn)",
            "tag": "ticketml-bench-mlflow:latest",
            "build": build_mlflow,
            "port": 8080,
            "ready": "/ping",
            "predict": ("/invocations", {"dataframe_records": [{"text": TEXT}]}),
        },
    }
    rows = {}
    try:
        for key, spec in images.items():
            print(f"building {key} ...", flush=True)
            build_s = spec["build"](args.workdir, spec["tag"])
            size = int(docker("image", "inspect", "--format", "{{.Size}}", spec["tag"]))
            runs = [
                cold_start(spec["tag"], spec["port"], spec["ready"], spec["predict"])
                for _ in range(args.runs)
            ]
            rows[key] = {
                "what": spec["what"],
                "size_mb": size / 1e6,
                "build_s": build_s,
                "ready_s_median": statistics.median(r["ready_s"] for r in runs),
                "first_predict_s_median": statistics.median(r["first_predict_s"] for r in runs),
                "runs": runs,
            }
    finally:
        if not args.keep:
            for spec in images.values():
                subprocess.run(["docker", "rmi", "-f", spec["tag"]], capture_output=True)
    print(
        f"\n{'image':<22} {'size MB':>8} {'build s':>8} {'ready s':>8} {'1st predict s':>14}  memory"
    )
    for key, r in rows.items():
        print(
            f"{key:<22} {r['size_mb']:8.0f} {r['build_s']:8.1f} {r['ready_s_median']:8.1f} "
            f"{r['first_predict_s_median']:14.3f}  {r['runs'][-1]['memory_after']}"
        )
    api, ml = rows["api"], rows["mlflow_build_docker"]
    ratio = {
        "size": ml["size_mb"] / api["size_mb"],
        "ready": ml["ready_s_median"] / api["ready_s_median"],
    }
    print(f"build-docker / API image: size {ratio['size']:.2f}x, cold start {ratio['ready']:.2f}x")
    write_result(
        {
            "images": rows,
            "mlflow_over_api": ratio,
            "docker": docker("version", "--format", "{{.Server.Version}}"),
            "machine": machine_info(),
        },
        args.out,
    )


if __name__ == "__main__":
    main()
