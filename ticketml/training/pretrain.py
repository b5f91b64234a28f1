"""pretrain: task-adaptive pretraining (TAPT; Gururangan et al., 2020, "Don't Stop Pretraining").

The encoder's masked-language-model training continues on the export's own text: every row of
the training and validation splits, labelled or not, plus an optional file of unlabelled tickets
(`pretrain.unlabelled_path`, with the export's text columns). The test split is left out, so
evaluating the adapted model stays honest. The adapted encoder (weights + tokenizer) is written
to `pretrain.output_dir` with `pretrain.json` (its lineage: source encoder, data version, run)
and logged to MLflow; `train model.encoder_name=<output_dir>` fine-tunes it.

An encoder that ships without its MLM head (the default all-MiniLM-L6-v2 is a sentence
encoder) gets a new head tied to its word embeddings; the held-out masked-token loss before
and after says what the adaptation bought.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
from datetime import timedelta
from pathlib import Path

import lightning as L
import numpy as np
import torch
from omegaconf import DictConfig

from ticketml.errors import ConfigError, DataError
from ticketml.io import read_json, write_json

log = logging.getLogger(__name__)
LINEAGE = "pretrain.json"
HELD_OUT = 0.05  # of the texts, at most MAX_HELD_OUT: the masked-token loss before and after
MAX_HELD_OUT = 2000


def unlabelled_texts(cfg: DictConfig, path: str) -> list[str]:
    """The text of an unlabelled export (the data config's text columns, joined), through the
    text transform the labelled rows went through."""
    from pyfunc.text import clean_text
    from ticketml.data.schema import transform_options
    from ticketml.io import read_table

    file = Path(path)
    if not file.is_file():
        raise DataError(f"pretrain.unlabelled_path={path}: no such file")
    df = read_table(file, "auto")
    columns = [str(c) for c in cfg.data.columns.text]
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(
            f"{file}: missing text column {missing[0]!r} (data.columns.text = {columns}; "
            f"columns found: {list(df.columns)})"
        )
    joined = df[columns].fillna("").astype(str).agg(cfg.data.text_joiner.join, axis=1)
    options = transform_options(cfg)
    return [t for t in (clean_text(v, options) for v in joined) if t]


def pretrain_texts(cfg: DictConfig) -> list[str]:
    """Distinct texts of pretrain.splits (cleaned, as the models read them) + the unlabelled file."""
    from ticketml.contract import load_splits

    frames = load_splits(cfg)
    texts = [t for s in cfg.pretrain.splits for t in frames[str(s)]["text"].tolist()]
    if cfg.pretrain.unlabelled_path:
        texts += unlabelled_texts(cfg, str(cfg.pretrain.unlabelled_path))
    texts = list(dict.fromkeys(t for t in texts if t))
    if len(texts) < 20:
        raise DataError(f"pretrain: only {len(texts)} distinct texts to pretrain on (need 20+)")
    return texts


def mask_tokens(
    ids: torch.Tensor, special: torch.Tensor, mask_id: int, vocab: int, p: float, gen
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking: p of the real tokens are predicted; of those 80% become [MASK], 10% a
    random token, 10% stay. Returns (inputs, labels with -100 where nothing is predicted)."""
    chosen = (torch.rand(ids.shape, generator=gen) < p) & ~special
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    inputs = ids.clone()
    roll = torch.rand(ids.shape, generator=gen)
    inputs[chosen & (roll < 0.8)] = mask_id
    swap = chosen & (roll >= 0.8) & (roll < 0.9)
    inputs[swap] = torch.randint(vocab, ids.shape, generator=gen)[swap]
    return inputs, labels


class MaskedTexts(torch.utils.data.Dataset):
    """Token ids of the texts, batched by length, masked anew each time a batch is drawn (a fixed
    generator for the held-out texts, so their loss compares before and after)."""

    def __init__(self, ids: list[list[int]], tokenizer, p: float, seed: int, fixed: bool):
        self.ids, self.tokenizer, self.p, self.seed, self.fixed = ids, tokenizer, p, seed, fixed
        self.gen = torch.Generator().manual_seed(seed)
        self.special = set(tokenizer.all_special_ids)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, rows) -> dict[str, torch.Tensor]:
        batch = [self.ids[i] for i in rows]
        width = max(map(len, batch))
        pad = self.tokenizer.pad_token_id or 0
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        for i, row in enumerate(batch):
            ids[i, : len(row)] = torch.tensor(row)
        attention = (torch.arange(width) < torch.tensor([len(r) for r in batch])[:, None]).long()
        special = torch.isin(ids, torch.tensor(sorted(self.special))) | (attention == 0)
        gen = torch.Generator().manual_seed(self.seed + int(rows[0])) if self.fixed else self.gen
        inputs, labels = mask_tokens(
            ids, special, self.tokenizer.mask_token_id, len(self.tokenizer), self.p, gen
        )
        return {"input_ids": inputs, "attention_mask": attention, "labels": labels}


class MaskedLM(L.LightningModule):
    """The encoder with its masked-LM head (a new one, tied to the embeddings, when the
    checkpoint has none)."""

    def __init__(self, encoder: str, learning_rate: float, weight_decay: float, warmup: float):
        super().__init__()
        from transformers import AutoModelForMaskedLM
        from transformers import logging as hf_logging

        from ticketml.encoder import resolve_encoder

        level = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # "newly initialized: cls.predictions..." is expected
        try:
            self.model = AutoModelForMaskedLM.from_pretrained(
                resolve_encoder(encoder), dtype=torch.float32
            )
        finally:
            hf_logging.set_verbosity(level)
        self.lr, self.weight_decay, self.warmup = learning_rate, weight_decay, warmup
        self.train()

    def forward(self, batch: dict) -> torch.Tensor:
        return self.model(**batch).loss

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = self(batch)
        self.log("pretrain/loss", loss, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def configure_optimizers(self):
        from ticketml.training.module import adamw_linear, decay_groups

        groups = decay_groups(self.model.named_parameters(), self.lr, self.weight_decay)
        return adamw_linear(self, groups, self.warmup)


def held_out_loss(model: MaskedLM, loader, dtype) -> float:
    """Mean masked-token cross-entropy over the held-out texts (fixed masks)."""
    model.eval()
    total = count = 0.0
    with torch.no_grad(), torch.autocast(model.device.type, dtype=dtype, enabled=dtype is not None):
        for batch in loader:
            batch = {k: v.to(model.device) for k, v in batch.items()}
            n = float((batch["labels"] != -100).sum())
            total += float(model(batch)) * n
            count += n
    model.train()
    return total / max(count, 1.0)


def encoder_sha256(folder: Path) -> str:
    digest = hashlib.sha256()
    for f in sorted(folder.glob("*.safetensors")):
        digest.update(f.read_bytes())
    return digest.hexdigest()[:16]


def save_encoder(module: MaskedLM, tokenizer, out: Path, lineage: dict) -> None:
    """The adapted encoder (without the MLM head) + tokenizer + pretrain.json, written next to
    `out` and moved into place at the end: a failed run leaves the old folder as it was."""
    staging = out.with_name(out.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    module.model.base_model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    write_json({**lineage, "encoder_sha256": encoder_sha256(staging)}, staging / LINEAGE)
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)


def encoder_lineage(encoder: str) -> dict:
    """pretrain.json of an encoder folder `pretrain` wrote ({} for any other encoder)."""
    path = Path(encoder) / LINEAGE
    return read_json(path) if path.is_file() else {}


def loader(data: MaskedTexts, lengths: np.ndarray, batch_size: int, shuffle: bool, seed: int):
    from ticketml.training.datamodule import BucketBatchSampler, SortedBatchSampler

    sampler = (
        BucketBatchSampler(lengths, batch_size, seed)
        if shuffle
        else SortedBatchSampler(lengths, batch_size)
    )
    return torch.utils.data.DataLoader(data, sampler=sampler, batch_size=None)


def masked_loaders(texts: list[str], tokenizer, p: DictConfig, batch: int, seed: int):
    """(train loader, held-out loader, held-out size): the texts tokenised, a held-out share
    (HELD_OUT, at most MAX_HELD_OUT) masked once and for all, the rest masked afresh."""
    from pyfunc.core import token_ids
    from ticketml.encoder import library_tokenizer

    cut = int(p.max_length)
    ids = token_ids(library_tokenizer(tokenizer, cut), texts, cut, 0, threads=True)
    order = np.random.default_rng(seed).permutation(len(ids))
    n_held = min(MAX_HELD_OUT, max(10, int(HELD_OUT * len(ids))))
    held, rest = order[:n_held], order[n_held:]
    pick = lambda rows: [ids[i] for i in rows]  # noqa: E731
    probability = float(p.mlm_probability)
    train_data = MaskedTexts(pick(rest), tokenizer, probability, seed, False)
    held_data = MaskedTexts(pick(held), tokenizer, probability, seed, True)
    lengths = {
        k: np.array([len(r) for r in d.ids])
        for k, d in (("train", train_data), ("held", held_data))
    }
    return (
        loader(train_data, lengths["train"], batch, True, seed),
        loader(held_data, lengths["held"], batch * 2, False, 0),
        n_held,
    )


def fit_mlm(module: MaskedLM, trainer, loaders, dtype, device) -> dict:
    """Fit the masked LM: the held-out masked-token loss before and after, and the seconds."""
    train_loader, held_loader, _ = loaders
    module.to(device)
    before = held_out_loss(module, held_loader, dtype)
    started = time.perf_counter()
    trainer.fit(module, train_dataloaders=train_loader)
    seconds = time.perf_counter() - started
    module.to(device)
    return {
        "before": before,
        "after": held_out_loss(module, held_loader, dtype),
        "seconds": seconds,
    }


def pretrain_trainer(cfg: DictConfig, accelerator: str, precision, epochs: int) -> L.Trainer:
    p = cfg.pretrain
    return L.Trainer(
        accelerator=accelerator,
        devices=1,
        precision=precision,
        max_epochs=epochs,
        max_steps=int(p.max_steps) if p.max_steps else -1,
        max_time=timedelta(minutes=float(p.max_minutes)) if p.max_minutes else None,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=bool(
            cfg.train.progress_bar if cfg.train.progress_bar is not None else True
        ),
        num_sanity_val_steps=0,
    )


def run_pretrain(cfg: DictConfig) -> dict:
    """Continue the encoder's masked-LM training on the export's text; write and log the result."""
    from ticketml.encoder import load_tokenizer
    from ticketml.model_card import log_lineage
    from ticketml.tracking import log_safely, stage_run
    from ticketml.training.runtime import auto_int, autocast_dtype, resolve_precision

    p = cfg.pretrain
    accelerator, precision = resolve_precision(cfg.train)
    on_gpu = accelerator == "gpu"
    source, out = pretrain_paths(cfg, on_gpu)
    L.seed_everything(int(cfg.seed), workers=True, verbose=False)
    # auto: 10 epochs on a GPU, 1 on the CPU (a smoke run); batches of 128 and 16
    epochs = auto_int(p.max_epochs, 1, 10, on_gpu, "pretrain.max_epochs")
    texts = pretrain_texts(cfg)
    tokenizer = load_tokenizer(source)
    batch = auto_int(p.batch_size, 16, 128, on_gpu, "pretrain.batch_size")
    loaders = masked_loaders(texts, tokenizer, p, batch, int(cfg.seed))
    module = MaskedLM(source, float(p.learning_rate), float(p.weight_decay), float(p.warmup_ratio))
    trainer = pretrain_trainer(cfg, accelerator, precision, epochs)
    with stage_run(cfg, "pretrain") as stage:
        stage.tags(**{"pretrain.source_encoder": source})
        log_safely(log_lineage, cfg, tuple(str(s) for s in p.splits))
        dtype = autocast_dtype(precision) if on_gpu else None
        fit = fit_mlm(module, trainer, loaders, dtype, torch.device("cuda" if on_gpu else "cpu"))
        lineage = {
            **pretrain_lineage(cfg, source, len(texts), loaders[2], on_gpu),
            "epochs": int(trainer.current_epoch),
            "steps": int(trainer.global_step),
            "seconds": fit["seconds"],
            "held_out_mlm_loss_before": fit["before"],
            "held_out_mlm_loss_after": fit["after"],
            "run_id": stage.run_id,
        }
        save_encoder(module, tokenizer, out, lineage)
        stage.metrics(
            {
                "held_out_mlm_loss_before": fit["before"],
                "held_out_mlm_loss_after": fit["after"],
                "pretrain_seconds": fit["seconds"],
                "pretrain_texts": float(len(texts)),
                "pretrain_steps": float(trainer.global_step),
            }
        )
        stage.artifact(out, "encoder")
    report_pretrain(lineage, out)
    return lineage


def pretrain_paths(cfg: DictConfig, on_gpu: bool) -> tuple[str, Path]:
    """(the source encoder, pretrain.output_dir), checked: a masking rate in (0, 1) and an
    output folder that is not the source."""
    from ticketml.contract import split_path
    from ticketml.encoder import choose_encoder

    p = cfg.pretrain
    if not 0 < float(p.mlm_probability) < 1:
        raise ConfigError(f"pretrain.mlm_probability={p.mlm_probability} must be in (0, 1)")
    source, why = choose_encoder(str(p.encoder_name), split_path(cfg, "train"), on_gpu)
    if why != "set":
        print(f"pretrain.encoder_name=auto: {source} ({why})", flush=True)
    out = Path(p.output_dir)
    if out.resolve() == Path(source).expanduser().resolve():
        raise ConfigError(f"pretrain.output_dir={out} is the source encoder: choose another folder")
    return source, out


def pretrain_lineage(cfg: DictConfig, source: str, texts: int, held_out: int, on_gpu: bool) -> dict:
    """Where the adapted encoder comes from: its source, the data and its version, the splits and
    the unlabelled file it read, how many texts (held out among them) and the device."""
    from ticketml.contract import data_version

    p = cfg.pretrain
    return {
        "source_encoder": source,
        "data": cfg.data.name,
        "data_version": data_version(cfg),
        "splits": [str(s) for s in p.splits],
        "unlabelled_path": str(p.unlabelled_path) if p.unlabelled_path else None,
        "texts": texts,
        "held_out_texts": held_out,
        "device": torch.cuda.get_device_name(0) if on_gpu else "cpu",
    }


def report_pretrain(lineage: dict, out: Path) -> None:
    before, after = lineage["held_out_mlm_loss_before"], lineage["held_out_mlm_loss_after"]
    print(
        f"pretrain: {lineage['texts']} texts, {lineage['steps']} steps ({lineage['epochs']} "
        f"epochs) in {lineage['seconds']:.1f} s; held-out masked-token loss {before:.3f} -> "
        f"{after:.3f} (perplexity {np.exp(before):.1f} -> {np.exp(after):.1f})"
    )
    print(f"pretrain: adapted encoder -> {out}/ (train with model.encoder_name={out})")
