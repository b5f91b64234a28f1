"""Token-length distribution of the training texts per encoder: what `model.max_length` cuts off.

    python bench/token_lengths.py --data synthetic --data support_tickets=PATH/tickets.csv \
        --encoder minilm --encoder multilingual-e5-small

Prepares each dataset in a temp folder (the real preprocess), tokenises the train split with each
encoder's tokenizer (with its `text_prefix`), and reports p50/p90/p95/p99/max tokens and the share
of texts longer than 128/256/512, per language when the data has one.
Writes bench/results/token_lengths.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.machine import machine_info, write_result  # noqa: E402

ENCODER_CONFIGS = {"minilm": "minilm", "multilingual-e5-small": "multilingual_e5_small"}


def stats(lengths: np.ndarray) -> dict:
    return {
        "n": int(len(lengths)),
        **{f"p{q}": int(np.percentile(lengths, q)) for q in (50, 90, 95, 99)},
        "max": int(lengths.max()),
        **{f"over_{cut}": round(float((lengths > cut).mean()), 4) for cut in (128, 256, 512)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", action="append", default=[], help="NAME or NAME=PATH")
    parser.add_argument("--encoder", action="append", default=[])
    args = parser.parse_args()
    from tokenizers import Tokenizer

    from ticketml.config import load_config
    from ticketml.data.preprocess import download_and_preprocess
    from ticketml.encoder import resolve_encoder

    report: dict = {"datasets": {}, "machine": machine_info()}
    for spec in args.data or ["synthetic"]:
        name, _, path = spec.partition("=")
        with tempfile.TemporaryDirectory() as tmp:
            cwd = os.getcwd()
            os.chdir(tmp)
            try:
                overrides = [f"data={name}"] + ([f"data.path={Path(cwd, path)}"] if path else [])
                download_and_preprocess(load_config(overrides))
                import pandas as pd

                train = pd.read_parquet("data/processed/train.parquet")
            finally:
                os.chdir(cwd)
        rows = {}
        for encoder in args.encoder or ["minilm"]:
            model_cfg = load_config([f"model={ENCODER_CONFIGS.get(encoder, encoder)}"]).model
            tok = Tokenizer.from_file(
                str(Path(resolve_encoder(model_cfg.encoder_name)) / "tokenizer.json")
            )
            tok.no_truncation()
            tok.no_padding()
            texts = [model_cfg.text_prefix + t for t in train["text"].astype(str)]
            lengths = np.array([len(e.ids) for e in tok.encode_batch(texts)])
            groups = {"all": lengths}
            if "language" in train.columns:
                for lang in sorted(train["language"].astype(str).unique()):
                    groups[lang] = lengths[(train["language"].astype(str) == lang).to_numpy()]
            rows[encoder] = {g: stats(v) for g, v in groups.items() if len(v)}
        report["datasets"][name] = rows

    print(
        f"\n{'dataset':<16} {'encoder':<22} {'group':<6} {'p50':>5} {'p95':>5} {'p99':>5} {'max':>5} {'>128':>6} {'>256':>6}"
    )
    for data, encoders in report["datasets"].items():
        for encoder, groups in encoders.items():
            for group, s in groups.items():
                print(
                    f"{data:<16} {encoder:<22} {group:<6} {s['p50']:>5} {s['p95']:>5} {s['p99']:>5} "
                    f"{s['max']:>5} {s['over_128']:>6.1%} {s['over_256']:>6.1%}"
                )
    write_result(report, ROOT / "bench" / "results" / "token_lengths.json")


if __name__ == "__main__":
    main()
