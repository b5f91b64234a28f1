"""Machine description stored with every benchmark result, and the one way results are written."""

from __future__ import annotations

import json
import os
import platform
import tempfile
from pathlib import Path


def stamp() -> dict:
    """What made a result: the commit (with a mark when the tree had changes), the command and
    the time."""
    import subprocess
    import sys
    import time

    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        try:
            out = subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return out.stdout.strip() if out.returncode == 0 else ""

    # a lent GPU machine gets the working tree over the checkout's first commit (its .git is
    # not this one's): the caller names the commit it sent, and that wins
    named = os.environ.get("TICKETML_COMMIT")
    commit = named or git("rev-parse", "HEAD") or "unknown"
    dirty = not named and bool(git("status", "--porcelain", "--untracked-files=no"))
    return {
        "commit": commit + ("+changes" if dirty else ""),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def table(title: str, columns: list[str], rows: list[list], note: str = "") -> dict:
    """A result's description of itself, for `result["tables"]`: bench/report.py renders every
    such table as is into docs/benchmarks.md (one generic function, no per-file code)."""
    if any(len(row) != len(columns) for row in rows):
        raise ValueError(f"{title}: every row needs {len(columns)} cells ({columns})")
    return {"title": title, "columns": list(columns), "rows": [list(r) for r in rows], "note": note}


def write_result(result: dict, path: str | Path) -> Path:
    """Write a benchmark result as JSON atomically (temp file, then rename) and say where;
    every result is stamped with the commit, command and time that made it (`stamp`)."""
    result = {**result, "stamp": stamp()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(path)
    print(f"wrote {path}")
    return path


def scratch_overrides(prefix: str = "ticketml-bench-", work: Path | None = None) -> list[str]:
    """Hydra overrides that send a benchmark's data, artifacts, checkpoints, plots and MLflow runs
    to a new temporary folder (or to `work`), so that it never writes into the user's project or
    store."""
    work = work or Path(tempfile.mkdtemp(prefix=prefix))
    dirs = ("raw_dir", "processed_dir", "artifacts_dir", "plots_dir", "checkpoints_dir")
    return [f"paths.{k}={work}/{k}" for k in dirs] + [
        f"mlflow.tracking_uri=sqlite:///{work}/mlflow.db"
    ]


def machine_info() -> dict:
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "processor": _cpu_model(),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
            info["gpu_count"] = torch.cuda.device_count()
    except ImportError:
        pass
    return info


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()
