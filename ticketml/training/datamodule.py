"""LightningDataModule: tokenise each split once, batch by length, pad per batch without a
Python loop per row.

Every split is held as one padded id matrix; a batch is a fancy-indexed slice cut to its widest
row, rounded up to a multiple of `pad_to` (on a GPU a few widths mean a few attention plans,
instead of a new one for every new width).
"""

from __future__ import annotations

import itertools

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from ticketml import TASKS
from ticketml.data.schema import encode_labels
from ticketml.encoder import library_tokenizer


class EncodedSplit(torch.utils.data.Dataset):
    """A split as arrays; indexed by a list of rows, it returns that batch, collated."""

    def __init__(
        self,
        input_ids: list[list[int]],
        labels: dict[str, np.ndarray],
        pad_id: int,
        pad_to: int,
        teachers: dict[str, np.ndarray] | None = None,
    ):
        self.lengths = np.fromiter(map(len, input_ids), np.int64, len(input_ids))
        width = int(self.lengths.max(initial=1))
        self.ids = np.full((len(input_ids), width), pad_id, dtype=np.int32)
        self.ids[np.arange(width) < self.lengths[:, None]] = np.fromiter(
            itertools.chain.from_iterable(input_ids), np.int32, int(self.lengths.sum())
        )
        self.labels = {t: np.asarray(v, dtype=np.int64) for t, v in labels.items()}
        self.pad_to = max(1, int(pad_to))
        # per task, the baseline's probability row per text (ticketml.baseline.out_of_fold_probs)
        self.teachers = {t: np.asarray(v, dtype=np.float32) for t, v in (teachers or {}).items()}

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, rows) -> dict[str, torch.Tensor]:
        rows = np.asarray(rows, dtype=np.int64)
        longest = int(self.lengths[rows].max(initial=1))
        width = min(-(-longest // self.pad_to) * self.pad_to, self.ids.shape[1])
        out = {
            "input_ids": torch.from_numpy(self.ids[rows, :width].astype(np.int64)),
            "attention_mask": torch.from_numpy(
                (np.arange(width) < self.lengths[rows, None]).astype(np.int64)
            ),
            "index": torch.from_numpy(rows),
        }
        for task, labels in self.labels.items():
            out[task] = torch.from_numpy(labels[rows])
        for task, probs in self.teachers.items():
            out[f"{task}_teacher"] = torch.from_numpy(probs[rows])
        return out


class BucketBatchSampler(torch.utils.data.Sampler):
    """Shuffled batches of similar length (less padding); a new order every epoch, seeded."""

    def __init__(self, lengths, batch_size: int, seed: int, bucket_batches: int = 50):
        self.lengths, self.batch_size, self.seed, self.bucket = (
            np.asarray(lengths),
            batch_size,
            seed,
            batch_size * bucket_batches,
        )
        self.epoch = 0

    def __iter__(self):
        rng = np.random.default_rng(self.seed + self.epoch)
        self.epoch += 1
        order = rng.permutation(len(self.lengths))
        batches = []
        for start in range(0, len(order), self.bucket):
            chunk = order[start : start + self.bucket]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batches += [
                chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)
            ]
        for i in rng.permutation(len(batches)):
            yield batches[i].tolist()

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)


class SortedBatchSampler(torch.utils.data.Sampler):
    """Evaluation batches: every row once, by length (rows carry their index back to order)."""

    def __init__(self, lengths, batch_size: int):
        self.order = np.argsort(np.asarray(lengths), kind="stable")
        self.batch_size = batch_size

    def __iter__(self):
        for i in range(0, len(self.order), self.batch_size):
            yield self.order[i : i + self.batch_size].tolist()

    def __len__(self) -> int:
        return -(-len(self.order) // self.batch_size)


class BalancedBatchSampler(torch.utils.data.Sampler):
    """Batches drawn with replacement, each topic equally likely (train.balanced_sampling)."""

    def __init__(self, topics: np.ndarray, n_topics: int, batch_size: int, seed: int):
        weights = 1.0 / np.bincount(topics, minlength=n_topics).clip(min=1)[topics]
        self.p, self.batch_size, self.seed, self.epoch = (
            weights / weights.sum(),
            batch_size,
            seed,
            0,
        )

    def __iter__(self):
        rng = np.random.default_rng(self.seed + self.epoch)
        self.epoch += 1
        rows = rng.choice(len(self.p), size=len(self.p), p=self.p)
        for i in range(0, len(rows), self.batch_size):
            yield rows[i : i + self.batch_size].tolist()

    def __len__(self) -> int:
        return -(-len(self.p) // self.batch_size)


class TicketDataModule(L.LightningDataModule):
    def __init__(
        self,
        frames: dict[str, pd.DataFrame],
        label_maps: dict,
        tokenizer,
        max_length: int = 128,
        batch_size: int = 32,
        text_prefix: str = "",
        balanced_sampling: bool = False,
        num_workers: int = 0,
        seed: int = 42,
        pad_to: int = 8,
        eval_batch_size: int | None = None,
        pin_memory: bool = False,
        head_tokens: int = 0,
        teachers: dict[str, dict[str, np.ndarray]] | None = None,
    ):
        super().__init__()
        self.frames, self.label_maps, self.tokenizer = frames, label_maps, tokenizer
        self.max_length, self.batch_size, self.text_prefix = max_length, batch_size, text_prefix
        self.balanced_sampling, self.num_workers, self.seed = balanced_sampling, num_workers, seed
        self.pad_to, self.pin_memory, self.head_tokens = pad_to, pin_memory, head_tokens
        self.eval_batch_size = eval_batch_size or batch_size
        self.teachers = teachers or {}  # per split and task, the baseline's probabilities
        self.splits: dict[str, EncodedSplit] = {}
        self.runtime = None  # the resolved settings it was built with (train.build_datamodule)

    def encode_texts(self, texts: list[str]) -> list[list[int]]:
        """Token ids as the served model makes them (pyfunc.core.token_ids), with the tokenizers
        library's threads."""
        from pyfunc.core import token_ids

        cut = library_tokenizer(self.tokenizer, self.max_length, self.head_tokens)  # set each call
        return token_ids(cut, texts, self.max_length, self.head_tokens, self.text_prefix, True)

    def setup(self, stage: str | None = None) -> None:
        pad_id = self.tokenizer.pad_token_id or 0
        for name, df in self.frames.items():
            if name not in self.splits:
                self.splits[name] = EncodedSplit(
                    self.encode_texts(df["text"].tolist()),
                    encode_labels(df, self.label_maps),
                    pad_id,
                    self.pad_to,
                    self.teachers.get(name),
                )

    def _loader(self, name: str, sampler) -> DataLoader:
        return DataLoader(
            self.splits[name],
            sampler=sampler,
            batch_size=None,  # the sampler yields whole batches; the dataset collates them
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        split = self.splits["train"]
        if self.balanced_sampling:
            sampler = BalancedBatchSampler(
                split.labels["topic"], len(self.label_maps["topic"]), self.batch_size, self.seed
            )
        else:
            sampler = BucketBatchSampler(split.lengths, self.batch_size, self.seed)
        return self._loader("train", sampler)

    def eval_loader(self, name: str) -> DataLoader:
        return self._loader(
            name, SortedBatchSampler(self.splits[name].lengths, self.eval_batch_size)
        )

    def val_dataloader(self) -> DataLoader:
        return self.eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self.eval_loader("test")

    def class_weights(self) -> dict[str, list[float]]:
        """Inverse-frequency weights (mean 1) from the train split's labelled rows."""
        out = {}
        for task in TASKS:
            labels = self.splits["train"].labels[task]
            counts = np.bincount(labels[labels >= 0], minlength=len(self.label_maps[task])).clip(
                min=1
            )
            w = counts.sum() / (len(counts) * counts)
            out[task] = (w / w.mean()).tolist()
        return out
