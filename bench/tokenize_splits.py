"""Training's tokenisation of whole splits against transformers' own call, side by side.

    python bench/tokenize_splits.py                     # 40,000 long synthetic tickets
    python bench/tokenize_splits.py --n-samples 4000 --encoders sentence-transformers/all-MiniLM-L6-v2

The reference is what training did before: the encoder's transformers tokenizer over the split
(the tokenizers library's threads on), a head_tail cut per row, the split's id matrix filled from a
generator. Training now calls the tokenizers library directly (pyfunc.core.token_ids, the served
core's path) and fills the matrix from itertools.chain (ticketml.training.datamodule). Same ids
asserted; prints a table and writes bench/results/tokenize_splits.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import machine_info, table, write_result  # noqa: E402


def reference(tok, texts: list[str], max_length: int, head: int) -> list[list[int]]:
    """transformers' call and a generator over every token: training's path before."""
    from pyfunc.core import head_and_tail, tokenizer_threads

    with tokenizer_threads():
        rows = tok(texts, truncation=False)["input_ids"]
    ids = [head_and_tail(r, max_length, head) for r in rows]
    lengths = np.fromiter(map(len, ids), np.int64, len(ids))
    np.fromiter((t for row in ids for t in row), np.int32, int(lengths.sum()))
    return ids


def shipped(tok, texts: list[str], max_length: int, head: int) -> list[list[int]]:
    """TicketDataModule.encode_texts and the split's matrix (EncodedSplit), as training runs them."""
    from ticketml.training.datamodule import EncodedSplit, TicketDataModule

    dm = TicketDataModule({}, {}, tok, max_length=max_length, batch_size=8, head_tokens=head)
    ids = dm.encode_texts(texts)
    EncodedSplit(ids, {}, 0, 8)
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=40000)
    parser.add_argument(
        "--encoders",
        nargs="+",
        default=["sentence-transformers/all-MiniLM-L6-v2", "multilingual-e5-small"],
    )
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--out", default=str(ROOT / "bench/results/tokenize_splits.json"))
    args = parser.parse_args()

    from ticketml.data.synthetic import generate
    from ticketml.encoder import load_tokenizer

    texts = generate(args.n_samples, 42, long_share=1.0)["text"].tolist()
    head = args.max_length // 2
    rows = []
    for name in args.encoders:
        tok = load_tokenizer(name)
        seconds, ids = {}, {}
        for label, fn in (("transformers", reference), ("shipped", shipped)):
            started = time.perf_counter()
            ids[label] = fn(tok, texts, args.max_length, head)
            seconds[label] = time.perf_counter() - started
        if ids["transformers"] != ids["shipped"]:
            raise SystemExit(f"{name}: the ids differ")
        ratio = seconds["transformers"] / seconds["shipped"]
        rows.append([name, len(texts), seconds["transformers"], seconds["shipped"], ratio])
        print(
            f"{name}: {len(texts)} texts, transformers {seconds['transformers']:.1f} s, "
            f"shipped {seconds['shipped']:.1f} s ({ratio:.2f}x), the same ids",
            flush=True,
        )
    result = {
        "n_samples": args.n_samples,
        "max_length": args.max_length,
        "head_tokens": head,
        "rows": rows,
        "machine": machine_info(),
        "tables": [
            table(
                "Training's tokenisation of whole splits (bench/tokenize_splits.py)",
                ["encoder", "texts", "transformers (s)", "shipped (s)", "speed-up"],
                [[r[0], r[1], f"{r[2]:.1f}", f"{r[3]:.1f}", f"{r[4]:.2f}x"] for r in rows],
                "long synthetic tickets, head_tail at max_length; the same ids from both",
            )
        ],
    }
    write_result(result, args.out)


if __name__ == "__main__":
    main()
