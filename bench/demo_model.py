"""The `make demo` model's calibration, as shipped: the transformer's map (calibration.json) and
the served hybrid's map on the blend (hybrid.json), with test ECE/NLL and macro-F1 before and
after, and the routing table. Reads a finished demo's artifacts; no training here.

    make demo && python bench/demo_model.py            # or --workdir a-clone-that-ran-the-demo

Writes bench/results/multitask_cpu_demo.json (bench/report.py: the calibration section).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import machine_info, write_result  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=ROOT)
    args = parser.parse_args()
    art = args.workdir / "artifacts"

    def read(name: str) -> dict:
        path = art / name
        if not path.is_file():
            raise SystemExit(f"{path}: missing (run `make demo` in {args.workdir} first)")
        return json.loads(path.read_text())

    multitask = read("metrics/multitask.json")
    result = {
        **multitask,
        "calibration": read("calibration.json"),
        "hybrid_calibration": read("hybrid.json"),
        "hybrid_test": read("metrics/hybrid.json")["test"],
        "machine": machine_info(),
    }
    write_result(result, ROOT / "bench" / "results" / "multitask_cpu_demo.json")
    for task in ("topic", "priority"):
        m, h = multitask["test"][task], result["hybrid_test"][task]
        print(
            f"{task}: transformer ECE {m['ece_uncalibrated']:.3f} -> {m['ece']:.3f}, "
            f"hybrid ECE {h['ece_uncalibrated']:.3f} -> {h['ece']:.3f}"
        )


if __name__ == "__main__":
    main()
