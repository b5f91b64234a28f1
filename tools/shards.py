"""Carry an encoder larger than one device call allows (64 MiB) as float16 shards.

    python tools/shards.py split ENCODER_FOLDER OUT [--max-mib 55]   # here
    python tools/shards.py join SHARDS_DIR ENCODER_OUT                # there, once every shard is in

`split` rounds the weights to float16, keeps only the word-embedding rows of tokens the GPU
benchmarks' data uses (tools/gpu_pack.benchmark_token_ids: other rows are never looked up for it
and come back as zeros), and cuts the safetensors bytes into OUT/part-NNN/ folders of at most
`--max-mib` MiB, one to carry per call, with OUT/meta/ (config, tokenizer files, a manifest of
SHA-256 sums). On the device, copy each carried part into one folder that outlives the calls
(e.g. /tmp/shards: the machine stays warm 30 s between calls) and `join` it: every part and the
whole are checked against the manifest before the float32 folder is written.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SMALL = (
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def split(folder: Path, out: Path, max_mib: float = 55) -> None:
    from safetensors.torch import save

    from tools.gpu_pack import carried_weights

    weights = carried_weights(folder)
    vocab = json.loads((folder / "config.json").read_text())["vocab_size"]
    blob = save(weights)
    size = int(max_mib * 2**20)
    shutil.rmtree(out, ignore_errors=True)
    (out / "meta").mkdir(parents=True)
    parts = []
    for i in range(0, len(blob), size):
        name = f"part-{i // size:03d}"
        (out / name).mkdir()
        (out / name / f"{name}.bin").write_bytes(blob[i : i + size])
        parts.append(
            {"name": name, "sha256": sha256(blob[i : i + size]), "bytes": len(blob[i : i + size])}
        )
    for f in SMALL:
        if (folder / f).is_file():
            shutil.copy(folder / f, out / "meta" / f)
    manifest = {"parts": parts, "sha256": sha256(blob), "vocab_rows": int(vocab)}
    (out / "meta" / "manifest.json").write_text(json.dumps(manifest, indent=2))
    print(
        f"{folder.name}: {len(blob) / 2**20:.1f} MiB of float16 in {len(parts)} parts -> {out}/part-*"
    )


def join(shards: Path, out: Path) -> None:
    from safetensors.torch import load, save_file

    from tools.gpu_pack import restored_weights

    manifest = json.loads((shards / "meta" / "manifest.json").read_text())
    blob = bytearray()
    for part in manifest["parts"]:
        path = next(shards.rglob(f"{part['name']}.bin"), None)
        if path is None:
            raise SystemExit(f"{part['name']} is missing from {shards}")
        data = path.read_bytes()
        if sha256(data) != part["sha256"]:
            raise SystemExit(f"{part['name']}: SHA-256 mismatch (a broken transfer)")
        blob += data
    if sha256(bytes(blob)) != manifest["sha256"]:
        raise SystemExit("the joined weights do not match the manifest")
    weights = restored_weights(load(bytes(blob)), manifest["vocab_rows"])
    out.mkdir(parents=True, exist_ok=True)
    for f in (shards / "meta").iterdir():
        if f.name != "manifest.json":
            shutil.copy(f, out / f.name)
    save_file(weights, out / "model.safetensors")
    print(f"joined {len(manifest['parts'])} parts (checksums match) -> {out}")


if __name__ == "__main__":
    verb, *args = sys.argv[1:]
    if verb == "split":
        mib = float(args[args.index("--max-mib") + 1]) if "--max-mib" in args else 55
        split(Path(args[0]), Path(args[1]), mib)
    elif verb == "join":
        join(Path(args[0]), Path(args[1]))
    else:
        raise SystemExit(__doc__)
