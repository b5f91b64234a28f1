"""How large the environment of a registered model is (what `mlflow models serve`, `build-docker`
and Spark's virtualenv manager install): the model's own requirements (pyfunc/requirements.txt,
on mlflow-skinny) against the same list on full `mlflow`, each in a fresh venv at the locked
versions, side by side.

    python bench/served_env.py

Prints size on disk and package count per variant and their ratio; writes
bench/results/served_env.json.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import machine_info, write_result  # noqa: E402
from ticketml.registry import serving_requirements  # noqa: E402


def build(requirements: list[str], folder: Path) -> dict:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    pip = [str(folder / "bin/pip"), "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "-c", str(ROOT / "requirements.lock"), *requirements], check=True)
    seconds = time.perf_counter() - started
    listed = subprocess.run(
        [str(folder / "bin/pip"), "list", "--format=freeze"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
    return {
        "requirements": requirements,
        "mib": size / 2**20,
        "packages": len(listed),
        "seconds": seconds,
    }


def main() -> None:
    shipped = serving_requirements()
    full = [
        ("mlflow" + r[len("mlflow-skinny") :]) if r.startswith("mlflow-skinny") else r
        for r in shipped
    ]
    with tempfile.TemporaryDirectory(prefix="ticketml-env-") as tmp:
        variants = {
            "shipped (mlflow-skinny)": build(shipped, Path(tmp) / "shipped"),
            "full mlflow": build(full, Path(tmp) / "full"),
        }
    ref = variants["full mlflow"]
    print(f"\n{'environment':<26} {'MiB':>7} {'packages':>9} {'install s':>10} {'size x':>7}")
    for name, v in variants.items():
        v["size_ratio"] = v["mib"] / ref["mib"]
        print(
            f"{name:<26} {v['mib']:>7.0f} {v['packages']:>9} {v['seconds']:>10.0f} "
            f"{v['size_ratio']:>7.2f}"
        )
    write_result(
        {"variants": variants, "machine": machine_info()}, ROOT / "bench/results/served_env.json"
    )


if __name__ == "__main__":
    main()
