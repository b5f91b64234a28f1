"""MLproject entry point `main`: the whole pipeline (`--tune false` trains without Optuna)."""

import sys

from ticketml.cli import PIPELINE, entrypoint

tune = "--tune" not in sys.argv or sys.argv[sys.argv.index("--tune") + 1].lower() not in (
    "false",
    "0",
    "no",
)
if "--tune" in sys.argv:
    i = sys.argv.index("--tune")
    del sys.argv[i : i + 2]
sys.exit(entrypoint(PIPELINE if tune else [s if s != "tune" else "train" for s in PIPELINE]))
