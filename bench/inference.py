"""CPU inference: PyTorch eager vs ONNX Runtime fp32 vs ONNX Runtime INT8 (+ the TF-IDF baseline).

    python bench/inference.py [--threads 2] [--workdir .] [overrides...]
    python bench/inference.py --workdir runs/e5 --out bench/results/inference_e5.json model=multilingual_e5_small

Uses the trained checkpoint and the exported graphs of `--workdir` (after `make demo`), the same
tokenisation and the same batches for every engine (the test set sorted by token count, as the
served core batches it), the same thread count, and the test split. Also times the served core
end to end (`core_int8`) at batch_size 1, 32 and 64. Prints a table and
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

import numpy as np  # noqa: E402

from bench.machine import machine_info, write_result  # noqa: E402
from tools.loopback import percentile  # noqa: E402


def measure(engine, core, texts: list[str], n_single: int, repeats: int) -> dict:
    """engine(texts, inputs) -> {task: logits or probs}, where inputs are the padded token ids of
    exactly those texts. Batches are the core's: the test set tokenised once, sorted by token
    count and cut into batches, each padded to its longest text; every engine gets the same."""
    ids = core.tokenize(texts)

    def run(idx):
        return engine([texts[i] for i in idx], core.pad([ids[i] for i in idx]))

    for i in range(8):
        run([i])  # warm-up
    single = []
    for i in range(min(n_single, len(texts))):
        start = time.perf_counter()
        run([i])
        single.append((time.perf_counter() - start) * 1000)
    out = {"batch1_p50_ms": percentile(single, 50), "batch1_p95_ms": percentile(single, 95)}
    for batch in (32, 64):
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            for idx in core.batches(ids, batch):
                run(idx)
            runs.append(len(texts) / (time.perf_counter() - start))
        out[f"batch{batch}_texts_per_s"] = statistics.median(runs)
    return out


def measure_core(core, texts: list[str], n_single: int, repeats: int) -> dict:
    """The served path end to end (tokenise, batch by token count, ONNX Runtime, calibration,
    hybrid blend) on the whole test set: one text per call, and the whole set per call at
    batch_size 1, 32 and 64."""
    out = {}
    single = []
    for t in texts[:n_single]:
        start = time.perf_counter()
        core.predict_proba([t])
        single.append((time.perf_counter() - start) * 1000)
    out["batch1_p50_ms"], out["batch1_p95_ms"] = percentile(single, 50), percentile(single, 95)
    for batch in (1, 32, 64):
        core.batch_size = batch
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            core.predict_proba(texts)
            runs.append(len(texts) / (time.perf_counter() - start))
        out[f"batch{batch}_texts_per_s"] = statistics.median(runs)
    out["batch64_vs_batch1"] = out["batch64_texts_per_s"] / out["batch1_texts_per_s"]
    return out


def macro_f1(engine, core, texts: list[str], labels: dict, label_maps: dict) -> dict[str, float]:
    from sklearn.metrics import f1_score

    ids = core.tokenize(texts)
    preds = {t: np.zeros(len(texts), dtype=np.int64) for t in labels}
    for idx in core.batches(ids, 64):
        out = engine([texts[i] for i in idx], core.pad([ids[i] for i in idx]))
        for task in preds:
            preds[task][idx] = np.asarray(out[task]).argmax(1)
    return {
        task: float(
            f1_score(
                labels[task],
                preds[task],
                average="macro",
                labels=list(range(len(label_maps[task]))),
                zero_division=0,
            )
        )
        for task in labels
    }


def graph_ceiling(classifier, tokens: int = 32, seconds: float = 3.0) -> dict:
    """The graph alone on uniform input (random ids, no padding, no tokeniser): texts/s at batch
    1 and 64. Their ratio is the most batching can give on this CPU; a core ratio near it means
    the core adds no batching loss of its own."""
    rng = np.random.default_rng(0)
    out = {"tokens": tokens}
    for batch in (1, 64):
        ids = rng.integers(1000, 5000, size=(batch, tokens)).astype(np.int64)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        classifier.session.run(classifier.output_names, feed)
        done, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            classifier.session.run(classifier.output_names, feed)
            done += batch
        out[f"batch{batch}_texts_per_s"] = done / (time.perf_counter() - started)
    out["batch64_vs_batch1"] = out["batch64_texts_per_s"] / out["batch1_texts_per_s"]
    return out


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
    from ticketml.baseline import load_baseline
    from ticketml.config import load_config
    from ticketml.contract import load_label_maps, load_splits
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

    def torch_eager(batch, inputs):
        with torch.inference_mode():
            out = model(
                torch.from_numpy(inputs["input_ids"]), torch.from_numpy(inputs["attention_mask"])
            )
        return {t: v.numpy() for t, v in out.items()}

    def ort(classifier):
        def run(batch, inputs):
            results = classifier.session.run(classifier.output_names, inputs)
            return dict(zip(("topic", "priority"), results, strict=True))

        return run

    engines = {
        "torch_eager_fp32": torch_eager,
        "onnxruntime_fp32": ort(fp32),
        "onnxruntime_int8": ort(int8),
        "tfidf_baseline": lambda batch, inputs: baseline.predict_proba(batch),
    }
    results = {}
    for name, predict in engines.items():
        print(f"measuring {name} ...", flush=True)
        results[name] = {
            **measure(predict, int8, texts, args.n_single, args.repeats),
            "test_macro_f1": macro_f1(predict, int8, texts, labels, label_maps),
        }
    ref = results["torch_eager_fp32"]
    for r in results.values():
        r["speedup_batch1_p50_vs_torch"] = ref["batch1_p50_ms"] / r["batch1_p50_ms"]
        for b in (32, 64):
            r[f"speedup_batch{b}_vs_torch"] = (
                r[f"batch{b}_texts_per_s"] / ref[f"batch{b}_texts_per_s"]
            )
    print("measuring the served core (INT8, hybrid) ...", flush=True)
    core = measure_core(
        TicketClassifier.from_dir(
            cfg.paths.artifacts_dir, int8=True, intra_op_threads=args.threads
        ),
        texts,
        args.n_single,
        args.repeats,
    )
    print("measuring the INT8 graph alone on uniform 32-token input ...", flush=True)
    ceiling = graph_ceiling(int8)
    report = {
        "threads": args.threads,
        "int8_graph_uniform_input": ceiling,
        "batching": "the test set tokenised once, sorted by token count, cut into batches",
        "core_int8": core,
        "test_texts": len(texts),
        "encoder": cfg.model.encoder_name,
        "max_length": cfg.model.max_length,
        "graph_mb": {
            name: os.path.getsize(path) / 2**20
            for name, path in (("fp32", fp32.onnx_path), ("int8", int8.onnx_path))
        },
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
    print(
        f"served core (INT8, hybrid): batch_size 1 {core['batch1_texts_per_s']:.0f} texts/s, "
        f"64 {core['batch64_texts_per_s']:.0f} texts/s ({core['batch64_vs_batch1']:.2f}x)"
    )
    print(
        f"INT8 graph alone, uniform {ceiling['tokens']}-token input: batch 1 "
        f"{ceiling['batch1_texts_per_s']:.0f} texts/s, 64 {ceiling['batch64_texts_per_s']:.0f} "
        f"texts/s ({ceiling['batch64_vs_batch1']:.2f}x: this CPU's batching ceiling)"
    )
    write_result(report, args.out)


if __name__ == "__main__":
    main()
