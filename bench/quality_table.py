"""A short table of bench/quality.py results: test macro-F1 and ECE per model, per result file.

python bench/quality_table.py bench/results/quality_jira_gpu*.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def runs_of(result: dict) -> list[dict]:
    return result.get("runs", [result])


def main() -> None:
    models = ("baseline", "transformer", "hybrid", "hybrid_blend", "hybrid_stack")
    print(f"{'result':<26} {'seed':>4} {'ep':>5}  " + "  ".join(f"{m:>19}" for m in models))
    for path in sorted(Path(p) for p in sys.argv[1:]):
        result = json.loads(path.read_text())
        for run in runs_of(result):
            m = run["models"]
            cells = [
                f"{m[k]['topic']['macro_f1']:.3f}/{m[k]['priority']['macro_f1']:.3f}"
                f" e{max(m[k]['topic']['ece'], m[k]['priority']['ece']):.2f}"
                if k in m
                else "-"
                for k in models
            ]
            # a rescored run (bench/quality.py --from-probs) did not train: no epochs or times
            epochs = f"{run.get('best_epoch')}/{run['epochs']}" if "epochs" in run else "saved"
            name = path.stem.removeprefix("quality_")
            print(
                f"{name:<26} {run['seed']:>4} {epochs:>5}  " + "  ".join(f"{c:>19}" for c in cells)
            )
            choice = run.get("hybrid_choice", {})
            if choice:
                print(
                    f"{'':<26} hybrid: "
                    + ", ".join(f"{t} {c['method']}" for t, c in choice.items())
                    + (
                        f"; train {run['train_seconds']:.0f} s, baseline {run['baseline_seconds']:.0f} s"
                        if "train_seconds" in run
                        else ""
                    )
                )


if __name__ == "__main__":
    main()
