"""CPU inference: PyTorch eager vs ONNX Runtime fp32 vs ONNX Runtime INT8 (+ the TF-IDF baseline).

    python bench/inference.py [--threads 2] [--workdir .] [overrides...]
    python bench/inference.py --workdir runs/e5 --out bench/results/inference_e5.json model=multilingual_e5_small

Uses the trained checkpoint and the exported graphs of `--workdir` (after `make demo`), the same
tokenisation for every engine, the same thread count, and the test split. Prints a table and
writes bench/results/inference.json: batch-1 p50/p95 latency, throughput at batch 32 and 64,
test macro-F1, and ratios against torch eager.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import machine_info, write_result  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def measure(predict, texts: list[str], n_single: int, repeats: int) -> dict:
    """predict(texts) -> {task: logits or probs}; returns latency/throughput figures."""
    for t in texts[:8]:
        predict([t])  # warm-up
    single = []
    for t in texts[:n_single]:
        start = time.perf_counter()
        predict([t])
        single.append((time.perf_counter() - start) * 1000)
    out = {"batch1_p50_ms": percentile(single, 50), "batch1_p95_ms": percentile(single, 95)}
    for batch in (32, 64):
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            for i in range(0, len(texts), batch):
                predict(texts[i : i + batch])
            runs.append(len(texts) / (time.perf_counter() - start))
        out[f"batch{batch}_texts_per_s"] = statistics.median(runs)
    return out


def macro_f1(predict, texts: list[str], labels: dict, label_maps: dict) -> dict[str, float]:
    import numpy as np
    from sklearn.metrics import f1_score

    preds: dict[str, list] = {t: [] for t in labels}
    for i in range(0, len(texts), 64):
        out = predict(texts[i : i + 64])
        for task in preds:
            preds[task].append(np.asarray(out[task]).argmax(1))
    return {
        task: float(
            f1_score(
                labels[task],
                np.concatenate(preds[task]),
                average="macro",
                labels=list(range(len(label_maps[task]))),
                zero_division=0,
            )
        )
        for task in labels
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--workdir", default=".")
    parser.add_argument("--n-single", type=int, default=200, help="texts timed one by one")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "inference.json"))
    parser.add_argument("overrides", nargs="*", help="Hydra overrides the model was trained with")
    args = parser.parse_args()
    args.out = str(Path(args.out).resolve())
    os.chdir(args.workdir)

    import torch

    from pyfunc.core import TicketClassifier
    from ticketml.baseline import load_baseline, load_label_maps, load_splits
    from ticketml.config import load_config
    from ticketml.data.schema import encode_labels
    from ticketml.export import load_checkpoint

    torch.set_num_threads(args.threads)
    cfg = load_config(args.overrides)
    test = load_splits(cfg)["test"]
    texts, label_maps = test["text"].tolist(), load_label_maps(cfg)
    labels = encode_labels(test, label_maps)
    fp32 = TicketClassifier.from_dir(cfg.paths.artifacts_dir, intra_op_threads=args.threads)
    int8 = TicketClassifier.from_dir(
        cfg.paths.artifacts_dir, int8=True, intra_op_threads=args.threads
    )
    model = load_checkpoint(cfg)
    baseline = load_baseline(cfg)

    def torch_eager(batch):
        enc = fp32.encode(batch)  # the same tokenisation for every engine
        with torch.inference_mode():
            out = model(torch.from_numpy(enc["input_ids"]), torch.from_numpy(enc["attention_mask"]))
        return {t: v.numpy() for t, v in out.items()}

    def ort(classifier):
        def run(batch):
            return dict(
                zip(
                    ("topic", "priority"),
                    classifier.session.run(classifier.output_names, classifier.encode(batch)),
                    strict=True,
                )
            )

        return run

    engines = {
        "torch_eager_fp32": torch_eager,
        "onnxruntime_fp32": ort(fp32),
        "onnxruntime_int8": ort(int8),
        "tfidf_baseline": baseline.predict_proba,
    }
    results = {}
    for name, predict in engines.items():
        print(f"measuring {name} ...", flush=True)
        results[name] = {
            **measure(predict, texts, args.n_single, args.repeats),
            "test_macro_f1": macro_f1(predict, texts, labels, label_maps),
        }
    ref = results["torch_eager_fp32"]
    for r in results.values():
        r["speedup_batch1_p50_vs_torch"] = ref["batch1_p50_ms"] / r["batch1_p50_ms"]
        for b in (32, 64):
            r[f"speedup_batch{b}_vs_torch"] = (
                r[f"batch{b}_texts_per_s"] / ref[f"batch{b}_texts_per_s"]
            )
    report = {
        "threads": args.threads,
        "test_texts": len(texts),
        "encoder": cfg.model.encoder_name,
        "max_length": cfg.model.max_length,
        "engines": results,
        "machine": machine_info(),
    }
    print(f"\n{len(texts)} test texts, {args.threads} threads, {report['machine']['processor']}")
    print(
        f"{'engine':<18} {'b1 p50 ms':>9} {'b1 p95 ms':>9} {'b32 t/s':>8} {'b64 t/s':>8} {'x b1':>6} {'x b64':>6} {'F1 topic':>8} {'F1 prio':>8}"
    )
    for name, r in results.items():
        print(
            f"{name:<18} {r['batch1_p50_ms']:>9.2f} {r['batch1_p95_ms']:>9.2f} {r['batch32_texts_per_s']:>8.1f} "
            f"{r['batch64_texts_per_s']:>8.1f} {r['speedup_batch1_p50_vs_torch']:>6.2f} {r['speedup_batch64_vs_torch']:>6.2f} "
            f"{r['test_macro_f1']['topic']:>8.3f} {r['test_macro_f1']['priority']:>8.3f}"
        )
    write_result(report, args.out)


if __name__ == "__main__":
    main()
