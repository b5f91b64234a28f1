"""What the prediction log costs a request: one FastAPI server per mode on the same model (log
off; on, keeping the hash, length, language and unknown-word share; on with the texts), driven
in turn with the same bounded load (tools/loopback.drive), rounds interleaved so that drift of
the machine hits every mode alike.

    python bench/prediction_log.py [--workdir .] [--clients 8] [--requests 300] [--rounds 3]
        [--texts ../shared/data/jira-agile-sample/tickets.csv]

Texts: real long tickets (the Jira sample's title + description, when it is there), else the
workdir's test split. Prints p50/p99 per mode and their ratio to the log off, checks in /metrics
that every request was logged (none dropped), and writes bench/results/prediction_log.json.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import machine_info, write_result  # noqa: E402
from tools.loopback import drive, fastapi_cmd, free_port, start  # noqa: E402

JIRA = ROOT.parent / "shared" / "data" / "jira-agile-sample" / "tickets.csv"


def load_texts(path: Path | None, workdir: Path, n: int = 500) -> tuple[list[str], str]:
    import pandas as pd

    if path is not None and path.is_file():
        df = pd.read_csv(path, nrows=5000)
        texts = (df["title"].fillna("") + "\n" + df["description"].fillna("")).str.strip()
        texts = [t[:20000] for t in texts if t][:n]
        return (
            texts,
            f"{path.parent.name}/{path.name} (first {len(texts)} tickets, title + description)",
        )
    test = pd.read_parquet(workdir / "data/processed/test.parquet")
    return test["raw_text"].tolist()[:n], "the workdir's test split"


def logged(base: str) -> tuple[int, int]:
    import httpx

    text = httpx.get(f"{base}/metrics").text
    written = re.search(r"^ticketml_prediction_log_records_total (\S+)$", text, re.M)
    dropped = re.findall(r"^ticketml_prediction_log_dropped_total\{.*\} (\S+)$", text, re.M)
    return int(float(written[1])) if written else 0, int(sum(float(d) for d in dropped))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default=".")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--texts", type=Path, default=JIRA)
    args = parser.parse_args()
    workdir = Path(args.workdir).resolve()
    texts, source = load_texts(args.texts, workdir)
    scratch = Path(tempfile.mkdtemp(prefix="ticketml-log-bench-"))
    modes = {
        "log off": ["serve.prediction_log=null"],
        "log on": [f"serve.prediction_log={scratch}/on"],
        "log on, with texts": [f"serve.prediction_log={scratch}/text", "serve.log_text=true"],
    }
    servers = {}
    try:
        for name, overrides in modes.items():
            port = free_port()
            cmd = [*fastapi_cmd(port), *overrides]
            base = f"http://127.0.0.1:{port}"
            servers[name] = (start(cmd, f"{base}/ready", str(workdir))[0], base)
        rounds: dict[str, list[dict]] = {name: [] for name in modes}
        for _ in range(args.rounds):
            for name, (_, base) in servers.items():
                rounds[name].append(
                    drive(
                        f"{base}/predict", lambda t: {"text": t}, texts, args.clients, args.requests
                    )
                )
        total = args.rounds * args.requests
        deadline = time.monotonic() + 30  # the writers may still hold the last records
        while time.monotonic() < deadline:
            counts = {name: logged(base) for name, (_, base) in servers.items()}
            if all(sum(c) >= total for name, c in counts.items() if name != "log off"):
                break
            time.sleep(0.2)
    finally:
        for proc, _ in servers.values():
            os.killpg(proc.pid, 15)
            proc.wait(30)
    result = {"texts": source, "clients": args.clients, "requests": total, "modes": {}}
    for name, runs in rounds.items():
        result["modes"][name] = {
            "p50_ms": statistics.median(r["p50_ms"] for r in runs),
            "p99_ms": statistics.median(r["p99_ms"] for r in runs),
            "requests_per_s": statistics.median(r["requests_per_s"] for r in runs),
            "errors": sum(r["errors"] for r in runs),
            "records_written": counts[name][0],
            "records_dropped": counts[name][1],
            "rounds": runs,
        }
    off = result["modes"]["log off"]
    print(f"\n{source}; {args.clients} clients, {args.rounds} x {args.requests} requests per mode")
    print(
        f"{'mode':<20} {'p50 ms':>7} {'p99 ms':>7} {'req/s':>6} {'p50 x':>6} {'p99 x':>6} "
        f"{'logged':>7} {'dropped':>7} {'errors':>6}"
    )
    for name, m in result["modes"].items():
        m["p50_ratio"], m["p99_ratio"] = m["p50_ms"] / off["p50_ms"], m["p99_ms"] / off["p99_ms"]
        print(
            f"{name:<20} {m['p50_ms']:>7.1f} {m['p99_ms']:>7.1f} {m['requests_per_s']:>6.1f} "
            f"{m['p50_ratio']:>6.2f} {m['p99_ratio']:>6.2f} {m['records_written']:>7} "
            f"{m['records_dropped']:>7} {m['errors']:>6}"
        )
    for name in list(modes)[1:]:
        m = result["modes"][name]
        if m["records_written"] != total or m["records_dropped"]:
            raise SystemExit(f"{name}: {m['records_written']} of {total} logged")
    result["machine"] = machine_info()
    write_result(result, ROOT / "bench" / "results" / "prediction_log.json")


if __name__ == "__main__":
    main()
