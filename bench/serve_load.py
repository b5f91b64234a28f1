"""Serving under a bounded load on loopback: FastAPI (and optionally `mlflow models serve`).

    python bench/serve_load.py [--workdir .] [--clients 8] [--requests 400] [--rounds 3] [--mlflow]

Starts the server on 127.0.0.1, measures the cold start (process start → /ready 200) and resident
memory, sends a fixed number of requests from N concurrent clients per round (requests/s,
p50/p95/p99 latency, errors), re-reads memory after each round, and compares with a process that
loads the same model through torch. Writes bench/results/serve.json.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import machine_info, write_result  # noqa: E402
from tools.loopback import drive, fastapi_cmd, free_port, mlflow_serve_cmd, rss_mib, start  # noqa: E402


def measure_server(name, cmd, base, predict_path, make_body, texts, args) -> dict:
    proc, cold = start(cmd, f"{base}{'/ready' if name == 'fastapi' else '/ping'}", args.workdir)
    try:
        result = {"cold_start_s": cold, "rss_mib_ready": rss_mib(proc.pid), "rounds": []}
        for _ in range(args.rounds):
            stats = drive(f"{base}{predict_path}", make_body, texts, args.clients, args.requests)
            stats["rss_mib_after"] = rss_mib(proc.pid)
            result["rounds"].append(stats)
        result["rss_growth_mib"] = (
            result["rounds"][-1]["rss_mib_after"] - result["rounds"][0]["rss_mib_after"]
        )
        return result
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(30)


def torch_load(workdir: str) -> dict:
    """Cold start and memory of loading the same model through torch (the path serving avoids)."""
    code = (
        "import time, resource; t=time.perf_counter()\n"
        "from ticketml.config import load_config\nfrom ticketml.export import load_checkpoint\n"
        "import torch\nm = load_checkpoint(load_config())\n"
        "with torch.inference_mode(): m(torch.ones(1, 8, dtype=torch.long), torch.ones(1, 8, dtype=torch.long))\n"
        "print(time.perf_counter()-t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024)"
    )
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=workdir, capture_output=True, text=True, timeout=600
    )
    wall = time.perf_counter() - started
    _, rss = out.stdout.split()[-2:]
    return {"cold_start_s": wall, "peak_rss_mib": float(rss)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default=".")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--mlflow", action="store_true", help="also drive `mlflow models serve` (the champion)"
    )
    args = parser.parse_args()
    args.workdir = str(Path(args.workdir).resolve())
    import pandas as pd

    texts = pd.read_parquet(Path(args.workdir) / "data/processed/test.parquet")["text"].tolist()
    report = {
        "clients": args.clients,
        "requests_per_round": args.requests,
        "servers": {},
        "machine": machine_info(),
    }
    port = free_port()
    report["servers"]["fastapi"] = measure_server(
        "fastapi",
        fastapi_cmd(port),
        f"http://127.0.0.1:{port}",
        "/predict",
        lambda t: {"text": t},
        texts,
        args,
    )
    if args.mlflow:
        port = free_port()
        env_uri = os.environ.get("MLFLOW_TRACKING_URI", f"sqlite:///{args.workdir}/mlflow.db")
        os.environ["MLFLOW_TRACKING_URI"] = env_uri
        report["servers"]["mlflow_models_serve"] = measure_server(
            "mlflow",
            mlflow_serve_cmd(port),
            f"http://127.0.0.1:{port}",
            "/invocations",
            lambda t: {"dataframe_records": [{"text": t}]},
            texts,
            args,
        )
    report["torch_load"] = torch_load(args.workdir)
    print(f"\n{args.clients} clients x {args.requests} requests x {args.rounds} rounds on loopback")
    print(
        f"{'server':<22} {'cold s':>7} {'RSS MiB':>8} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'errors':>6} {'RSS +MiB':>8}"
    )
    for name, r in report["servers"].items():
        last = r["rounds"][-1]
        print(
            f"{name:<22} {r['cold_start_s']:>7.1f} {r['rss_mib_ready']:>8.0f} {last['requests_per_s']:>7.1f} "
            f"{last['p50_ms']:>7.1f} {last['p95_ms']:>7.1f} {last['p99_ms']:>7.1f} "
            f"{sum(x['errors'] for x in r['rounds']):>6} {r['rss_growth_mib']:>8.1f}"
        )
    t = report["torch_load"]
    print(f"{'torch load (reference)':<22} {t['cold_start_s']:>7.1f} {t['peak_rss_mib']:>8.0f}")
    write_result(report, ROOT / "bench" / "results" / "serve.json")


if __name__ == "__main__":
    main()
