"""What `model.neighbours` costs: the training tickets' index (pyfunc.neighbours) at the
pipeline's sizes, beside a plain scikit-learn reference on the same vectors.

    python bench/neighbours_cost.py                    # synthetic_long at 4k, 20k and 40k rows
    python bench/neighbours_cost.py --rows 4000 --requests 50

For each size (70% train, the rest val + test, as `preprocess` splits): the baseline's features
fitted on train (ticketml.baseline.fit_features, untimed: the baseline stage pays it), then the
index built (export_onnx's cost), its file's size (what the model bundle grows by), val + test
searched for their 30 nearest (export's cost: one thread, then a thread a core as export
does), and one request at a time (a served request's
extra cost: its word block is the baseline's, so only the search). The reference: scikit-learn's
NearestNeighbors (brute-force cosine) on the same unpruned word TF-IDF rows, with the share of
each reference top-10 that the pruned index finds. Writes bench/results/neighbours_cost.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import machine_info, table, write_result  # noqa: E402

K = 30  # pyfunc.neighbours.MAX_K: what export's search keeps


def seconds(fn, *args):
    started = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - started


def measure(rows: int, requests: int, cfg) -> dict:
    from scipy import sparse
    from sklearn.neighbors import NearestNeighbors

    from pyfunc.neighbours import Neighbours
    from ticketml.baseline import cpu_count, fit_features
    from ticketml.data.synthetic import generate

    frame = generate(rows, 7, long_share=1.0)
    n_train = int(rows * 0.7)
    train, held = frame.iloc[:n_train], frame["text"].iloc[n_train:].tolist()
    features, _ = fit_features(train["text"].tolist(), cfg.baseline)
    words = features.word_block(train["text"].tolist())
    maps = {t: sorted(train[t].unique()) for t in ("topic", "priority")}
    labels = {t: train[t].map({c: i for i, c in enumerate(maps[t])}).to_numpy() for t in maps}
    n_terms = len(features.word_vocab)
    index, build_s = seconds(
        Neighbours.build, words, n_terms, labels, {t: len(m) for t, m in maps.items()}
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "neighbours.npz"
        index.save(path)
        file_mb = path.stat().st_size / 2**20
    query = features.word_block(held)
    (found, _), search_s = seconds(index.search, query, len(held), K)
    _, threaded_s = seconds(index.search, query, len(held), K, cpu_count())
    one = [features.word_block([t]) for t in held[:requests]]
    _, request_s = seconds(lambda: [index.search(q, 1, K) for q in one])

    def matrix(block, n):
        r, c, v = block
        return sparse.csr_matrix((v, (r, c)), shape=(n, n_terms))

    reference = NearestNeighbors(n_neighbors=K, metric="cosine", algorithm="brute")
    _, ref_build_s = seconds(reference.fit, matrix(words, n_train))
    (_, ref_found), ref_search_s = seconds(reference.kneighbors, matrix(query, len(held)))
    first = [matrix(q, 1) for q in one]
    _, ref_request_s = seconds(lambda: [reference.kneighbors(q) for q in first])
    overlap = np.mean(
        [len(set(a[:10]) & set(b[:10])) / 10 for a, b in zip(found, ref_found, strict=True)]
    )
    return {
        "rows": rows,
        "train_rows": n_train,
        "searched_rows": len(held),
        "median_chars": float(frame["text"].str.len().median()),
        "build_s": build_s,
        "file_mib": file_mb,
        "search_s": search_s,
        "search_threads": cpu_count(),
        "search_threaded_s": threaded_s,
        "request_ms": request_s / len(one) * 1e3,
        "reference_build_s": ref_build_s,
        "reference_search_s": ref_search_s,
        "reference_request_ms": ref_request_s / len(one) * 1e3,
        "top10_found_of_reference": float(overlap),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[4000, 20000, 40000])
    parser.add_argument("--requests", type=int, default=200, help="single-text searches timed")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "neighbours_cost.json"))
    args = parser.parse_args()
    from ticketml.config import load_config

    cfg = load_config()
    runs = []
    for rows in args.rows:
        runs.append(measure(rows, args.requests, cfg))
        r = runs[-1]
        print(
            f"{rows:>6} rows: build {r['build_s']:.1f} s ({r['reference_build_s']:.1f} s), "
            f"search {r['searched_rows']} in {r['search_s']:.1f} s "
            f"({r['search_threaded_s']:.1f} s on {r['search_threads']} threads) "
            f"({r['reference_search_s']:.1f} s), a request {r['request_ms']:.2f} ms "
            f"({r['reference_request_ms']:.2f} ms), file {r['file_mib']:.1f} MiB, "
            f"top-10 overlap {r['top10_found_of_reference']:.2f}",
            flush=True,
        )
    columns = [
        "rows (train)",
        "build index (reference fit)",
        "search val + test (reference)",
        "on every core",
        "× reference",
        "one request (reference)",
        "neighbours.npz",
        "reference top-10 found",
    ]
    rows = [
        [
            f"{r['rows']:,} ({r['train_rows']:,})",
            f"{r['build_s']:.1f} s ({r['reference_build_s']:.1f} s)",
            f"{r['search_s']:.1f} s ({r['reference_search_s']:.1f} s)",
            f"{r['search_threaded_s']:.1f} s ({r['search_threads']} threads)",
            f"{r['reference_search_s'] / r['search_s']:.2f}×",
            f"{r['request_ms']:.2f} ms ({r['reference_request_ms']:.2f} ms)",
            f"{r['file_mib']:.1f} MiB",
            f"{r['top10_found_of_reference']:.0%}",
        ]
        for r in runs
    ]
    write_result(
        {
            "data": "synthetic_long (long_share=1.0)",
            "runs": runs,
            "machine": machine_info(),
            "tables": [
                table(
                    "model.neighbours: the training tickets' index (pyfunc.neighbours, numpy) "
                    "against scikit-learn's brute-force cosine NearestNeighbors on the same "
                    "unpruned word TF-IDF rows",
                    columns,
                    rows,
                    "One process; × reference: the reference's search time over ours (one "
                    "thread each). The "
                    "index keeps each training ticket's 64 heaviest terms, so its neighbours "
                    "are the reference's only in part (last column).",
                )
            ],
        },
        args.out,
    )


if __name__ == "__main__":
    main()
