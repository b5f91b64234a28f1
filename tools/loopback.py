"""Loopback helpers shared by the benchmarks and the tests (neither imports the other): a free
port, the server commands, starting one until it is ready, a bounded load, resident memory."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fastapi_cmd(port: int, model_uri: str = "artifacts") -> list[str]:
    """`ticketml serve` on 127.0.0.1:port (the venv's Python)."""
    return [
        sys.executable,
        "-m",
        "ticketml",
        "serve",
        f"--port={port}",
        f"serve.model_uri={model_uri}",
    ]


def mlflow_serve_cmd(port: int, model_uri: str = "models:/ticketml@champion") -> list[str]:
    """`mlflow models serve` of the venv (it execs uvicorn from PATH) on 127.0.0.1:port."""
    return [
        str(Path(sys.executable).parent / "mlflow"),
        "models",
        "serve",
        "-m",
        model_uri,
        "--env-manager",
        "local",
        "-p",
        str(port),
        "-h",
        "127.0.0.1",
    ]


def rss_mib(pid: int) -> float:
    """Resident memory of a process and its children (mlflow serve forks uvicorn)."""
    total = 0
    pids = [pid]
    try:
        pids += [
            int(p)
            for p in subprocess.run(
                ["pgrep", "-P", str(pid)], capture_output=True, text=True
            ).stdout.split()
        ]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def start(
    cmd: list[str], ready_url: str, cwd: str, timeout: float = 300
) -> tuple[subprocess.Popen, float]:
    import httpx

    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    while time.perf_counter() - started < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd[0]} exited with {proc.returncode}")
        try:
            if httpx.get(ready_url, timeout=1).status_code == 200:
                return proc, time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{ready_url} not ready after {timeout}s")


def drive(url: str, make_body, texts: list[str], clients: int, requests: int) -> dict:
    """`requests` POSTs split over `clients` threads; bounded in count and by a 60 s timeout each."""
    import httpx

    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def worker(k: int) -> None:
        with httpx.Client(timeout=60) as client:
            for i in range(k, requests, clients):
                start = time.perf_counter()
                try:
                    ok = client.post(url, json=make_body(texts[i % len(texts)])).status_code == 200
                except httpx.HTTPError:
                    ok = False
                elapsed = (time.perf_counter() - start) * 1000
                with lock:
                    latencies.append(elapsed)
                    errors[0] += not ok

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    return {
        "requests": requests,
        "errors": errors[0],
        "requests_per_s": requests / wall,
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "p99_ms": percentile(latencies, 99),
    }
