"""Carry what a lent GPU machine lacks (no package index there) in under 64 MiB.

    python tools/gpu_pack.py pack .carry          # here: wheels, the MiniLM encoder, outside data
    python tools/gpu_pack.py unpack .carry        # there: prints the shell lines to use them

    # over 64 MiB with multilingual-e5-small: two carries for two calls to the warm machine
    python tools/gpu_pack.py pack .carry1 --parts wheels,data && python tools/e5_pack.py pack .carry1/e5
    python tools/gpu_pack.py pack .carry2 --parts minilm
    python tools/gpu_pack.py pack .carry3 --parts wheels,postgres,minilm   # bench/tune_workers.py

The machine's Python (3.12) has torch, Lightning and transformers but not MLflow, Hydra or Optuna:
their wheels (and those of their dependencies that it lacks) travel in `.carry/whl`. The default
encoder's weights (87 MB in float32) travel as float16 (values rounded to float16, then loaded
as float32 there), and the outside and Jira samples, when ../shared has them, as Parquet
(`data.path=.carry/data/support.parquet`, `.carry/data/jira.parquet`). `.carry/` is
git-ignored: none of it is committed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
# What `ticketml` needs that the device image lacks, pinned to this venv's versions where ours.
WHEELS = [
    "hydra-core==1.3.8",
    "omegaconf==2.3.0",
    "optuna==5.0.0",
    "colorlog==6.12.0",
    "sqlalchemy==2.1.9",
    "alembic==1.20.1",
    "mako==1.4.3",
    "mlflow-skinny==3.17.2",
    "mlflow-tracing==3.17.2",
    "databricks-sdk==0.162.0",
    "fastapi==0.165.0",
    "starlette==1.10.0",
    "uvicorn==0.54.0",
    "gitpython==3.2.1",
    "gitdb==4.0.12",
    "smmap==5.0.3",
    "opentelemetry-api==1.45.2",
    "opentelemetry-proto==1.45.2",
    "opentelemetry-sdk==1.45.2",
    "opentelemetry-semantic-conventions==0.66b2",
    "pydantic==2.14.4",
    "pydantic-core==2.50.5",
    "annotated-types==0.8.0",
    "typing-inspection==0.4.5",
    "python-dotenv==1.2.4",
    "sqlparse==0.6.1",
    "cachetools==7.3.3",
    "importlib-metadata==9.1.0",
    "google-auth==2.63.0",
    "pyasn1==0.6.5",
    "pyasn1-modules==0.4.2",
    "cryptography==50.0.2",  # MLflow's SQL store
    "cffi==2.1.1",
    "pycparser==3.12",
    "platformdirs==4.14.9",
    "psutil==7.2.2",
]
# the team stack's PostgreSQL, for tune workers sharing one study (bench/tune_workers.py) only:
# 15 MiB that the quality and throughput jobs do not need (part "postgres")
POSTGRES_WHEELS = [
    "pgserver==0.1.4",
    "psycopg==3.3.9",
    "psycopg-binary==3.3.9",
    "fasteners==0.20",
]
PARTS = ("wheels", "postgres", "minilm", "data")
SDIST_ONLY = ["antlr4-python3-runtime==4.9.3"]  # pure Python: built into a wheel here
PLATFORM = [
    "--python-version",
    "3.12",
    "--implementation",
    "cp",
    *[
        x
        for p in ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
        for x in ("--platform", p)
    ],
]
OUTSIDE = ROOT.parent / "shared" / "data" / "support-tickets-sample" / "tickets.csv"
JIRA = ROOT.parent / "shared" / "data" / "jira-agile-sample" / "tickets.csv"


def benchmark_token_ids(encoder: Path) -> np.ndarray:
    """Every token id of the data the GPU benchmarks use: the synthetic sets they generate
    (short and long, the seeds and sizes of bench/quality.py, train_throughput.py and scale.py)
    and the outside sample."""
    import pandas as pd
    from tokenizers import Tokenizer

    from ticketml.data.synthetic import generate

    texts = []
    for seed in (42, 1, 2, 3, 4):
        texts += (
            generate(4000, seed).text.tolist() + generate(4000, seed, long_share=1.0).text.tolist()
        )
    texts += generate(20000, 42).text.tolist() + generate(40000, 42, long_share=1.0).text.tolist()
    if OUTSIDE.is_file():
        df = pd.read_csv(OUTSIDE, dtype=str, keep_default_na=False)
        texts += (df["subject"] + "\n" + df["body"]).tolist()
    if JIRA.is_file():
        df = pd.read_csv(JIRA, dtype=str, keep_default_na=False)
        texts += (df["title"] + "\n" + df["description"]).str.slice(0, 20000).tolist()
    tok = Tokenizer.from_file(str(encoder / "tokenizer.json"))
    tok.no_truncation()
    ids = {i for e in tok.encode_batch([t.lower() for t in texts] + texts) for i in e.ids}
    return np.array(sorted(ids | set(range(1000))), dtype=np.int64)  # [PAD], [CLS], … too


def carried_weights(encoder: Path) -> dict:
    """The encoder's weights as they travel: float16, and the word-embedding table cut to the
    rows of tokens the benchmark data uses (`<table>.rows` + `<table>.kept`; the others are never
    looked up for it, and `restored_weights` brings them back as zeros)."""
    import torch
    from safetensors.torch import load_file

    weights = {
        k: v.half() if v.is_floating_point() else v
        for k, v in load_file(encoder / "model.safetensors").items()
    }
    table = next(k for k in weights if k.endswith("word_embeddings.weight"))
    keep = torch.from_numpy(benchmark_token_ids(encoder))
    weights[f"{table}.rows"], weights[f"{table}.kept"] = weights.pop(table)[keep].contiguous(), keep
    return weights


def restored_weights(weights: dict, vocab: int) -> dict:
    """`carried_weights` back as float32, each cut table whole again (`vocab` rows)."""
    import torch

    weights = dict(weights)
    for name in [k for k in weights if k.endswith(".rows")]:
        table = name.removesuffix(".rows")
        rows, kept = weights.pop(name), weights.pop(f"{table}.kept")
        weights[table] = torch.zeros((vocab, rows.shape[1]), dtype=rows.dtype)
        weights[table][kept] = rows
    return {k: v.to(torch.float32) if v.is_floating_point() else v for k, v in weights.items()}


def pack(out: Path, parts: tuple[str, ...] = ("wheels", "minilm", "data")) -> None:
    """`parts` of PARTS into `out`: the wheels (with "postgres" the team stack's too), the
    MiniLM weights, the outside and Jira samples. Each part unpacks on its own, so parts over
    64 MiB together travel as separate carries to the warm machine."""
    import pandas as pd
    from safetensors.torch import save_file

    from ticketml.encoder import resolve_encoder

    if unknown := set(parts) - set(PARTS):
        raise SystemExit(f"unknown parts {sorted(unknown)}: choose from {', '.join(PARTS)}")
    pip = [sys.executable, "-m", "pip"]
    wheels = (WHEELS if "wheels" in parts else []) + (
        POSTGRES_WHEELS if "postgres" in parts else []
    )
    if wheels:
        whl = out / "whl"
        whl.mkdir(parents=True, exist_ok=True)
        download = [*pip, "download", "-q", "--no-deps", "--only-binary=:all:", *PLATFORM]
        subprocess.run([*download, "-d", whl, *wheels], check=True)
    if "wheels" in parts:
        subprocess.run(
            [*pip, "wheel", "-q", "--no-deps", "-w", out / "whl", *SDIST_ONLY], check=True
        )
    if "minilm" in parts:
        src = Path(resolve_encoder("minilm"))
        enc = out / "minilm"
        enc.mkdir(parents=True, exist_ok=True)
        for f in src.iterdir():
            if f.is_file() and f.suffix in (".json", ".txt"):
                shutil.copy(f, enc / f.name)
        save_file(carried_weights(src), enc / "model.fp16.safetensors")
    for source, name in ((OUTSIDE, "support.parquet"), (JIRA, "jira.parquet")):
        if "data" in parts and source.is_file():  # Parquet: a third of the CSV's size
            (out / "data").mkdir(parents=True, exist_ok=True)
            pd.read_csv(source, dtype=str, keep_default_na=False).to_parquet(
                out / "data" / name, compression="zstd"
            )
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 2**20
    print(f"packed {out} ({size:.1f} MiB)")


def unpack(src: Path, site: Path = Path("/tmp/site"), encoder: Path = Path("/tmp/minilm")) -> None:
    """Install the wheels into `site`, write the encoder folder (float32) to `encoder` and copy
    the data to /tmp/data: each part where `src` has it, so the parts can travel in separate calls
    to the warm machine when together they pass the 64 MiB limit."""
    wheels = sorted((src / "whl").glob("*.whl"))
    if wheels:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--no-index",
                "--no-deps",
                "--no-compile",
                "--no-cache-dir",
                "--upgrade",
                "--target",
                site,
                *wheels,
            ],
            check=True,
        )
    for f in sorted((src / "data").glob("*.parquet")):
        Path("/tmp/data").mkdir(exist_ok=True)
        shutil.copy(f, Path("/tmp/data") / f.name)
        print(f"data: /tmp/data/{f.name}")
    if (src / "minilm").is_dir():
        from safetensors.torch import load_file, save_file

        encoder.mkdir(parents=True, exist_ok=True)
        for f in (src / "minilm").iterdir():
            if f.suffix in (".json", ".txt"):
                shutil.copy(f, encoder / f.name)
        weights = load_file(src / "minilm" / "model.fp16.safetensors")
        vocab = json.loads((encoder / "config.json").read_text())["vocab_size"]
        save_file(restored_weights(weights, vocab), encoder / "model.safetensors")
    print(f"export PYTHONPATH={site}:{ROOT}  # encoder: model.encoder_name={encoder}")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("verb", choices=["pack", "unpack"])
    parser.add_argument("folder", type=Path)
    parser.add_argument(
        "--parts",
        default="wheels,minilm,data",
        help=f"pack: a comma-separated choice of {', '.join(PARTS)} (default: all but postgres)",
    )
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.verb == "pack":
        pack(args.folder, tuple(filter(None, args.parts.split(","))))
    else:
        unpack(args.folder)
