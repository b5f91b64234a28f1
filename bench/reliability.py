"""Reliability figures for the README, measured against a real server on loopback.

    python bench/reliability.py [--workdir .] [--max-examples 500]

1. the hostile-input table (tools/hostile_inputs.py): status and message of each, and whether the
   next valid request still succeeds;
2. schemathesis (CLI) fuzzing every operation of the served OpenAPI schema: cases sent, 5xx
   answers, schema violations;
3. faults at start-up: model folder missing or model file corrupt → /ready 503 with the reason,
   /health 200, the process still up; output disk full during batch `infer` (RLIMIT_FSIZE) → a
   clear error, the previous output untouched, no temp file left.
The server under test is `ticketml serve` on the exported model in `<workdir>/artifacts`.
Writes bench/results/reliability.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import machine_info, write_result  # noqa: E402
from tools.faults import infer_with_file_size_limit  # noqa: E402
from tools.hostile_inputs import HOSTILE, VALID  # noqa: E402
from tools.loopback import fastapi_cmd, free_port, start  # noqa: E402

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def hostile_table(base: str) -> list[dict]:
    import httpx

    rows = []
    for case in HOSTILE:
        r = httpx.post(f"{base}{case.path}", timeout=60, **case.request())
        after = httpx.post(f"{base}{VALID[0]}", timeout=60, **VALID[1])
        rows.append(
            {
                "input": case.name,
                "path": case.path,
                "expected": case.status,
                "status": r.status_code,
                "detail": str(r.json().get("detail", ""))[:120],
                "next_valid_request": after.status_code,
            }
        )
    return rows


def fuzz(base: str, max_examples: int, workdir: Path) -> dict:
    report = workdir / "schemathesis.json"
    cmd = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{base}/openapi.json",
        "--checks",
        CHECKS,
        "--max-examples",
        str(max_examples),
        "--seed",
        "42",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(report),
    ]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=1800)
    statuses: dict[str, int] = {}
    failed_checks = 0
    for line in report.read_text().splitlines():
        event = json.loads(line).get("ScenarioFinished")
        if not event:
            continue
        for interaction in event["recorder"].get("interactions", {}).values():
            code = str(interaction["response"]["status_code"])
            statuses[code] = statuses.get(code, 0) + 1
        for checks in event["recorder"].get("checks", {}).values():
            failed_checks += sum(c["status"] == "failure" for c in checks)
    return {
        "command": " ".join(cmd[1:]),
        "exit_code": proc.returncode,
        "cases": sum(statuses.values()),
        "status_counts": dict(sorted(statuses.items())),
        "server_errors": sum(n for code, n in statuses.items() if code.startswith("5")),
        "failed_checks": failed_checks,
        "summary": _summary(proc.stdout),
        "seconds": time.perf_counter() - started,
    }


def _summary(stdout: str) -> str:
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    return next((line for line in lines if "generated" in line), "")


def startup_fault(name: str, model_dir: Path, workdir: Path) -> dict:
    import httpx

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc, _ = start(fastapi_cmd(port, str(model_dir)), f"{base}/health", str(workdir))
    try:
        time.sleep(3)  # time to try (and fail) the load
        ready = httpx.get(f"{base}/ready", timeout=10)
        predict = httpx.post(f"{base}/predict", json={"text": "VPN down"}, timeout=10)
        return {
            "fault": name,
            "ready_status": ready.status_code,
            "reason": str(ready.json().get("reason", ""))[:160],
            "health_status": httpx.get(f"{base}/health", timeout=10).status_code,
            "predict_status": predict.status_code,
            "process_alive": proc.poll() is None,
        }
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(30)


def disk_full_fault(workdir: Path, scratch: Path) -> dict:
    import pandas as pd

    test = pd.read_parquet(workdir / "data/processed/test.parquet")
    pd.concat([test] * 5).to_parquet(scratch / "big.parquet")
    out = scratch / "scored.csv"
    out.write_text("previous output\n")

    proc = infer_with_file_size_limit(
        workdir, scratch / "big.parquet", out, workdir / "artifacts", 200, 256 * 1024, 600
    )
    return {
        "fault": "output disk full during batch infer (256 KiB file-size limit)",
        "exit_code": proc.returncode,
        "error": proc.stderr.strip().splitlines()[-1][:200] if proc.stderr.strip() else "",
        "previous_output_kept": out.read_text() == "previous output\n",
        "temp_files_left": len(list(scratch.glob("*.tmp"))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default=".")
    parser.add_argument("--max-examples", type=int, default=500)
    args = parser.parse_args()
    workdir = Path(args.workdir).resolve()
    report: dict = {"machine": machine_info()}
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc, cold = start(fastapi_cmd(port), f"{base}/ready", str(workdir))
        try:
            report["hostile"] = hostile_table(base)
            report["fuzz"] = fuzz(base, args.max_examples, scratch)
            report["server_alive_after"] = proc.poll() is None
        finally:
            os.killpg(proc.pid, 15)
            proc.wait(30)
        corrupt = scratch / "corrupt"
        shutil.copytree(workdir / "artifacts", corrupt)
        for name in ("model.onnx", "model.int8.onnx"):
            if (corrupt / name).exists():
                (corrupt / name).write_bytes(b"\x00not an onnx graph" * 100)
        report["faults"] = [
            startup_fault("model folder missing", scratch / "no-such-model", workdir),
            startup_fault("model file corrupt", corrupt, workdir),
            disk_full_fault(workdir, scratch),
        ]

    print(f"\n{'hostile input':<42} {'expect':>6} {'got':>4} {'next':>5}  detail")
    for row in report["hostile"]:
        print(
            f"{row['input']:<42} {row['expected']:>6} {row['status']:>4} "
            f"{row['next_valid_request']:>5}  {row['detail'][:60]}"
        )
    f = report["fuzz"]
    print(
        f"\nschemathesis: {f['cases']} requests ({f['summary']}), {f['server_errors']} server errors, "
        f"{f['failed_checks']} failed checks, exit {f['exit_code']}, "
        f"statuses {f['status_counts']} ({f['seconds']:.0f} s)"
    )
    for fault in report["faults"]:
        print("fault:", json.dumps(fault, ensure_ascii=False))
    write_result(report, ROOT / "bench" / "results" / "reliability.json")


if __name__ == "__main__":
    main()
