"""Faults injected into real child processes (bench/reliability.py and the fault tests share them)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def file_size_limit(limit: int):
    """A subprocess `preexec_fn`: the child's writes past `limit` bytes fail with EFBIG (as on a
    full disk) instead of killing it with SIGXFSZ."""

    def apply() -> None:
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def infer_with_file_size_limit(
    cwd: Path, input_path, output_path, model_uri, chunk_size: int, limit: int, timeout: int
) -> subprocess.CompletedProcess:
    """Batch `ticketml infer` in a real child process whose writes stop at `limit` bytes."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "ticketml",
            "infer",
            f"--input_path={input_path}",
            f"--output_path={output_path}",
            f"infer.model_uri={model_uri}",
            f"infer.chunk_size={chunk_size}",
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=file_size_limit(limit),
    )
