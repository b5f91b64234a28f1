"""Move @champion while clients are being served (bench/champion_flip.py and the reload test)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from tools.loopback import fastapi_cmd, free_port, start


def flip_under_load(
    workdir: str, clients: int = 8, seconds: float = 20.0, name: str = "ticketml"
) -> dict:
    """Serve @champion, flip it to the other version after `seconds / 2`; returns the figures."""
    import httpx
    import mlflow
    from mlflow import MlflowClient

    uri = f"sqlite:///{Path(workdir).resolve()}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    client = MlflowClient()
    versions = sorted(int(v.version) for v in client.search_model_versions(f"name='{name}'"))
    if len(versions) < 2:
        raise RuntimeError(f"need two registered versions of {name!r}, found {versions}")
    old, new = str(versions[-2]), str(versions[-1])
    client.set_registered_model_alias(name, "champion", old)
    port = free_port()
    cmd = fastapi_cmd(port, f"models:/{name}@champion") + ["serve.reload_interval_s=1"]
    env_before = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    base = f"http://127.0.0.1:{port}"
    proc, cold = start(cmd, f"{base}/ready", workdir)
    answers: list[tuple[float, int, str]] = []
    lock, stop = threading.Lock(), threading.Event()

    def worker(k: int) -> None:
        with httpx.Client(timeout=60) as http:
            i = 0
            while not stop.is_set():
                sent = time.perf_counter()
                try:
                    r = http.post(f"{base}/predict", json={"text": f"VPN down on floor {k}-{i}"})
                    status, version = r.status_code, r.headers.get("X-Model-Version", "?")
                except httpx.HTTPError:
                    status, version = 0, "?"
                with lock:
                    answers.append((sent, status, version))
                i += 1

    try:
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        time.sleep(seconds / 2)
        flipped = time.perf_counter()
        client.set_registered_model_alias(name, "champion", new)
        swapped = None
        while time.perf_counter() - flipped < seconds:
            if httpx.get(f"{base}/ready", timeout=5).json().get("model_version") == new:
                swapped = time.perf_counter()
                break
            time.sleep(0.05)
        time.sleep(max(0.0, started + seconds - time.perf_counter()))
        stop.set()
        for t in threads:
            t.join()
    finally:
        import signal

        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
        if env_before is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = env_before
    after = [a for a in answers if swapped is not None and a[0] >= swapped]
    return {
        "clients": clients,
        "seconds": seconds,
        "cold_start_s": cold,
        "from_version": old,
        "to_version": new,
        "requests": len(answers),
        "failed": sum(1 for _, status, _ in answers if status != 200),
        "alias_to_swap_s": None if swapped is None else swapped - flipped,
        "answered_by": {v: sum(1 for a in answers if a[2] == v) for v in (old, new)},
        "sent_after_swap": len(after),
        "sent_after_swap_not_new": sum(1 for a in after if a[2] != new),
    }
