"""Memory of the served core under long batches: ONNX Runtime's CPU arena on, off, and shrunk
after each call (what ships).

    python bench/serve_memory.py [--artifacts artifacts] [--batches 6] [--chars 1500]

For each setting a fresh process loads the exported model (pyfunc.core.TicketClassifier, the
core behind every serving path), scores `--batches` batches of 64 long tickets (log lines, a
stack trace, quoted mail; `--chars` characters each) and reports resident memory when loaded,
after each batch (its maximum: what the process keeps between calls; the transient peak inside a
call is not sampled) and at the end, and the seconds per batch; the arena-on run is the plain
ONNX Runtime reference (its default). Writes bench/results/serve_memory.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import machine_info, write_result  # noqa: E402


def long_ticket(i: int, chars: int) -> str:
    lines = [
        f"Ticket {i}: the sync job fails every night since the upgrade, users cannot log in.",
        "-----Original Message----- From: ops@example.com  > please check the attached log",
        *(
            f"2026-11-{(i + k) % 28 + 1:02d} 03:{k:02d}:17 ERROR [worker-{k}] "
            f"com.acme.sync.Job.run(Job.java:{100 + k}) Connection reset by peer id={i * 31 + k}"
            for k in range(60)
        ),
    ]
    return "\n".join(lines)[:chars]


def child(artifacts: str, batches: int, chars: int) -> dict:
    from pyfunc.core import TicketClassifier
    from tools.loopback import rss_mib

    pid = os.getpid()
    started = time.perf_counter()
    model = TicketClassifier.from_dir(artifacts, int8=None)
    out = {"load_s": time.perf_counter() - started, "rss_loaded_mib": rss_mib(pid), "batches": []}
    for b in range(batches):
        texts = [long_ticket(b * 64 + i, chars) for i in range(64)]
        t0 = time.perf_counter()
        model.predict(texts)
        out["batches"].append({"seconds": time.perf_counter() - t0, "rss_mib": rss_mib(pid)})
    out["rss_peak_mib"] = max(b["rss_mib"] for b in out["batches"])
    out["rss_end_mib"] = out["batches"][-1]["rss_mib"]
    out["seconds_per_batch"] = sum(b["seconds"] for b in out["batches"][1:]) / max(1, batches - 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", default=str(ROOT / "artifacts"))
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--chars", type=int, default=1500)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.artifacts, args.batches, args.chars)))
        return
    runs = {}
    settings = (
        ("arena on (ONNX Runtime default)", "1"),
        ("arena off", "0"),
        ("arena, shrunk after each call (shipped)", "shrink"),
    )
    for name, arena in settings:
        proc = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                f"--artifacts={args.artifacts}",
                f"--batches={args.batches}",
                f"--chars={args.chars}",
            ],
            env={**os.environ, "TICKETML_ORT_ARENA": arena},
            capture_output=True,
            text=True,
            check=True,
        )
        runs[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    on, _, off = runs.values()
    print(
        f"{'setting':<40} {'loaded MiB':>10} {'max after a batch MiB':>22} {'end MiB':>8} {'s/batch':>8}"
    )
    for name, r in runs.items():
        print(
            f"{name:<40} {r['rss_loaded_mib']:>10.0f} {r['rss_peak_mib']:>22.0f} "
            f"{r['rss_end_mib']:>8.0f} {r['seconds_per_batch']:>8.2f}"
        )
    ratios = {
        "rss_kept_shipped_over_default": off["rss_peak_mib"] / on["rss_peak_mib"],
        "rss_growth_shipped_over_default": (off["rss_end_mib"] - off["rss_loaded_mib"])
        / max(1e-9, on["rss_end_mib"] - on["rss_loaded_mib"]),
        "seconds_shipped_over_default": off["seconds_per_batch"] / on["seconds_per_batch"],
    }
    print("ratios (shipped / ONNX Runtime default):", {k: round(v, 2) for k, v in ratios.items()})
    write_result(
        {
            "batch": 64,
            "chars": args.chars,
            "batches": args.batches,
            "runs": runs,
            "ratios": ratios,
            "machine": machine_info(),
        },
        ROOT / "bench" / "results" / "serve_memory.json",
    )


if __name__ == "__main__":
    main()
