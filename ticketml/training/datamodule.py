"""LightningDataModule: tokenise each split once, pad dynamically per batch."""

from __future__ import annotations

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, WeightedRandomSampler

from ticketml import TASKS
from ticketml.data.schema import encode_labels


class EncodedSplit(torch.utils.data.Dataset):
    def __init__(self, input_ids: list[list[int]], labels: dict[str, np.ndarray]):
        self.input_ids = input_ids
        self.labels = labels

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.input_ids[i], **{t: int(self.labels[t][i]) for t in self.labels}}


class BucketBatchSampler(torch.utils.data.Sampler):
    """Shuffled batches of similar length (less padding); a new order every epoch, seeded."""

    def __init__(self, lengths: list[int], batch_size: int, seed: int, bucket_batches: int = 50):
        self.lengths, self.batch_size, self.seed, self.bucket = (
            lengths,
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
            chunk = sorted(order[start : start + self.bucket], key=lambda i: self.lengths[i])
            batches += [
                chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)
            ]
        for i in rng.permutation(len(batches)):
            yield [int(j) for j in batches[i]]

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)


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
    ):
        super().__init__()
        self.frames, self.label_maps, self.tokenizer = frames, label_maps, tokenizer
        self.max_length, self.batch_size, self.text_prefix = max_length, batch_size, text_prefix
        self.balanced_sampling, self.num_workers, self.seed = balanced_sampling, num_workers, seed
        self.splits: dict[str, EncodedSplit] = {}

    def encode_texts(self, texts: list[str]) -> list[list[int]]:
        texts = [self.text_prefix + t for t in texts]
        return self.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]

    def setup(self, stage: str | None = None) -> None:
        for name, df in self.frames.items():
            if name not in self.splits:
                self.splits[name] = EncodedSplit(
                    self.encode_texts(df["text"].tolist()), encode_labels(df, self.label_maps)
                )

    def collate(self, batch: list[dict]) -> dict[str, torch.Tensor]:
        width = max(len(b["input_ids"]) for b in batch)
        pad = self.tokenizer.pad_token_id or 0
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, b in enumerate(batch):
            ids[i, : len(b["input_ids"])] = torch.tensor(b["input_ids"])
            mask[i, : len(b["input_ids"])] = 1
        out = {"input_ids": ids, "attention_mask": mask}
        for task in TASKS:
            if task in batch[0]:
                out[task] = torch.tensor([b[task] for b in batch], dtype=torch.long)
        return out

    def _loader(self, name: str, shuffle: bool = False) -> DataLoader:
        split = self.splits[name]
        sampler = None
        if shuffle and not self.balanced_sampling:
            lengths = [len(ids) for ids in split.input_ids]
            batches = BucketBatchSampler(lengths, self.batch_size, self.seed)
            return DataLoader(
                split, batch_sampler=batches, collate_fn=self.collate, num_workers=self.num_workers
            )
        if shuffle and self.balanced_sampling:
            topic = split.labels["topic"]
            weights = (
                1.0 / np.bincount(topic, minlength=len(self.label_maps["topic"])).clip(min=1)[topic]
            )
            gen = torch.Generator().manual_seed(self.seed)
            sampler = WeightedRandomSampler(
                torch.as_tensor(weights, dtype=torch.double), len(split), generator=gen
            )
            shuffle = False
        return DataLoader(
            split,
            batch_size=self.batch_size,
            shuffle=shuffle,
            sampler=sampler,
            collate_fn=self.collate,
            num_workers=self.num_workers,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def class_weights(self) -> dict[str, list[float]]:
        """Inverse-frequency weights (mean 1) from the train split."""
        out = {}
        for task in TASKS:
            counts = np.bincount(
                self.splits["train"].labels[task], minlength=len(self.label_maps[task])
            ).clip(min=1)
            w = counts.sum() / (len(counts) * counts)
            out[task] = (w / w.mean()).tolist()
        return out
