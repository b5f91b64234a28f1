"""Scoring a whole split on the CPU as export_onnx does, by batch size, against plain ONNX Runtime.

    python bench/split_scoring.py                      # the project's artifacts/ and test split
    python bench/split_scoring.py --workdir /tmp/ticketml-scale-xyz --rows 600 --repeats 3

Export scores val and test through the fp32 graph (on a machine without a GPU) and test through
the INT8 graph with `ticketml.export.split_scorer`: batches of similar token counts, each run on
one ONNX Runtime thread, as many at once as the process has cores; fp32 in batches of
SPLIT_BATCH, INT8 in the served model's (its logits move with the batch, shown here: why it
keeps them). The reference is plain ONNX Runtime as a user would call it: one session with its
own threads, batches of 64 in the same order. Rows/s per graph and batch size, the repeats
interleaved (each figure is the median), fp32's logits asserted the same; prints a table and
writes bench/results/split_scoring.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import machine_info, table, write_result  # noqa: E402


def argmax_f1(logits: dict, labels: dict, label_maps: dict) -> str:
    """Test macro-F1 of each task's argmax (the transformer's raw logits), topic / second task."""
    from ticketml.metrics import fast_macro_f1

    return " / ".join(
        f"{fast_macro_f1(labels[t], logits[t].argmax(1), len(label_maps[t])):.3f}" for t in logits
    )


def rows_per_second(scorer, texts: list[str], batch: int) -> tuple[float, dict]:
    scorer.batch_size = batch
    started = time.perf_counter()
    logits = scorer.run_logits(texts)
    return len(texts) / (time.perf_counter() - started), logits


def main() -> None:
    from pyfunc.core import TicketClassifier
    from ticketml.baseline import cpu_count
    from ticketml.data.schema import encode_labels
    from ticketml.export import split_scorer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default=".", help="holds artifacts/ and data/processed/")
    parser.add_argument("--rows", type=int, default=600, help="test rows scored (0: all)")
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 16, 8, 4])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "bench/results/split_scoring.json"))
    args = parser.parse_args()
    work = Path(args.workdir)
    test = pd.read_parquet(work / "data/processed/test.parquet")
    rows = test if not args.rows else test.iloc[: args.rows]
    results, table_rows = {}, []
    for graph in ("fp32", "int8"):
        int8 = graph == "int8"
        if not (work / "artifacts" / ("model.int8.onnx" if int8 else "model.onnx")).is_file():
            continue
        scorer = split_scorer(work / "artifacts", int8=int8)
        plain = TicketClassifier.from_dir(work / "artifacts", int8=int8, transformer_only=True)
        texts = scorer.clean(rows["text"].tolist())
        labels = encode_labels(rows, scorer.label_maps)
        rates = {"plain": [], **{b: [] for b in args.batches}}
        f1 = {}  # the same on every repeat: a batch's rows are the same each time
        moved = {b: (0.0, 1.0) for b in args.batches}  # INT8: (max |diff|, argmax agreement)
        for _ in range(args.repeats):
            rate, expected = rows_per_second(plain, texts, 64)
            rates["plain"].append(rate)
            f1["plain"] = argmax_f1(expected, labels, scorer.label_maps)
            for b in args.batches:
                rate, got = rows_per_second(scorer, texts, b)
                rates[b].append(rate)
                f1[b] = argmax_f1(got, labels, scorer.label_maps)
                for task, values in expected.items():
                    if not int8:  # the same arithmetic on every row, whatever the batch
                        np.testing.assert_allclose(got[task], values, atol=1e-4)
                        continue
                    # dynamic quantisation scales activations per batch (README, INT8 caveat)
                    diff = float(np.abs(got[task] - values).max())
                    agree = float((got[task].argmax(1) == values.argmax(1)).mean())
                    moved[b] = (max(moved[b][0], diff), min(moved[b][1], agree))
        ref = statistics.median(rates["plain"])
        results[graph] = {str(k): statistics.median(v) for k, v in rates.items()}
        results[graph + "_vs_plain"] = {str(b): moved[b] for b in args.batches} if int8 else {}
        plain_label = "plain ONNX Runtime (its threads, batch 64)"
        table_rows.append([graph, plain_label, f"{ref:.1f}", "ref", "–", f1["plain"]])
        for b in args.batches:
            rate = statistics.median(rates[b])
            label = f"split_scorer, {cpu_count()} at once, batch {b}"
            same = f"{moved[b][0]:.3f} / {moved[b][1]:.3f}" if int8 else "same (1e-4)"
            table_rows.append([graph, label, f"{rate:.1f}", f"{rate / ref:.2f}x", same, f1[b]])
    columns = [
        "graph",
        "scorer",
        "rows/s",
        "x plain",
        "logits vs plain: max |diff| / argmax agree",
        "argmax test macro-F1",
    ]
    for row in table_rows:
        print(f"{row[0]:<6} {row[1]:<48} {row[2]:>8} {row[3]:>7}  {row[4]:<16} {row[5]}")
    note = (
        f"{len(rows)} test rows of {work.resolve().name}, median of {args.repeats} interleaved "
        "repeats; fp32: the same logits asserted; INT8 scales activations per batch, so its "
        "logits move with the batch (the worst over repeats and tasks)"
    )
    write_result(
        {
            "rows": len(rows),
            "repeats": args.repeats,
            "rows_per_second": results,
            "machine": machine_info(),
            "tables": [
                table("Scoring a split on the CPU (export_onnx)", columns, table_rows, note)
            ],
        },
        args.out,
    )


if __name__ == "__main__":
    main()
