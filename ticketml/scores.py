"""Logits a graph has already computed, kept so that no split is scored twice by the same graph:
export_onnx scores val and test once, and evaluate and promote read those scores back instead of
running the graph again (on 40k long tickets that was minutes of CPU per stage).

The baseline's probabilities are kept the same way (`tfidf-<digest of baseline.npz>.npz`,
ticketml.baseline.tfidf_scorer): the baseline stage stores val and test, export_onnx's hybrid
weights and evaluate read them back.

The store is one file per graph, `<artifacts>/.scores/<digest>.npz`, keyed by what decides the
logits: the graph's bytes, the tokenizer's bytes and the model config's tokenisation settings
(pyfunc.core.TicketClassifier.tokenize), then per text by the SHA-1 of the text the graph was
given (after the model's own text transform). A text it lacks is scored and added. It is a cache
of the exported model, never part of it: the served bundle (pyfunc.bundle) does not carry it, and
export_onnx empties it whenever it writes a new graph.

INT8's dynamic quantisation scales activations per batch, so an INT8 graph's logits for one text
move slightly (labels do not, see tests/production/test_export.py) with the batch it is scored
in: a stored value is the one the export's batch gave.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ticketml import TASKS
from ticketml.io import atomic_path

FOLDER = ".scores"
TFIDF = "tfidf-"  # the baseline's stores (ticketml.baseline.tfidf_scorer): kept by `clear`
TOKENISATION = ("max_length", "truncation", "head_tokens", "text_prefix", "pad_id")


def text_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()


def file_digest(*paths: str | Path, settings: dict | None = None) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                digest.update(block)
    if settings is not None:
        digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest()[:24]


def graph_digest(classifier) -> str:
    """What decides a text's logits: the graph, the tokenizer and the tokenisation settings."""
    settings = {k: classifier.config.get(k) for k in TOKENISATION}
    return file_digest(classifier.onnx_path, classifier.bundle.path("tokenizer"), settings=settings)


class LogitStore:
    """The stored logits of one graph (TicketClassifier.logit_store: the core asks it first), or
    under `name` another model's scores (the baseline's probabilities, in float64)."""

    def __init__(
        self, folder: str | Path, classifier=None, name: str | None = None, dtype=np.float32
    ):
        self.dtype = dtype
        self.path = Path(folder) / FOLDER / f"{name or graph_digest(classifier)}.npz"
        self.rows: dict[str, int] = {}
        self.values: dict[str, np.ndarray] = {}
        if self.path.is_file():
            with np.load(self.path, allow_pickle=False) as data:
                self.rows = {k: i for i, k in enumerate(data["keys"].tolist())}
                self.values = {t: data[t] for t in TASKS}
        self.hits = self.misses = 0

    def get(self, texts: Sequence[str], widths: dict[str, int]):
        """(found per text, logits per task with the found rows filled)."""
        keys = [text_key(t) for t in texts]
        found = np.array([k in self.rows for k in keys], dtype=bool)
        out = {t: np.zeros((len(texts), widths[t]), dtype=self.dtype) for t in TASKS}
        if found.any():
            at = np.array([self.rows[k] for k, ok in zip(keys, found, strict=True) if ok])
            for t in TASKS:
                out[t][found] = self.values[t][at]
        self.hits += int(found.sum())
        self.misses += int((~found).sum())
        return found, out

    def put(self, texts: Sequence[str], logits: dict[str, np.ndarray]) -> None:
        """Add the logits of `texts` and write the file (whole, atomically)."""
        new = {}
        for i, key in enumerate(text_key(t) for t in texts):
            if key not in self.rows and key not in new:
                new[key] = i
        if not new:
            return
        take = np.fromiter(new.values(), np.int64, len(new))
        start = len(self.rows)
        for t in TASKS:
            rows = logits[t][take].astype(self.dtype)
            self.values[t] = (
                rows if t not in self.values else np.concatenate([self.values[t], rows])
            )
        self.rows.update({k: start + j for j, k in enumerate(new)})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.path) as tmp:
            with open(tmp, "wb") as f:  # np.savez on a path would add ".npz" to the temp name
                np.savez(f, keys=np.array(list(self.rows), dtype="U40"), **self.values)


def attach(classifier, artifacts_dir: str | Path) -> LogitStore:
    """Give `classifier` the store of its graph under `artifacts_dir`; returns the store."""
    store = LogitStore(artifacts_dir, classifier)
    classifier.logit_store = store
    return store


def clear(artifacts_dir: str | Path, prefix: str = "") -> None:
    """Forget the stored scores whose file names start with `prefix`: export_onnx, before it
    writes a new graph, forgets every graph's (not the baseline's, `TFIDF`); the baseline stage,
    saving a new baseline, forgets the old one's."""
    folder = Path(artifacts_dir) / FOLDER
    for path in folder.glob(f"{prefix}*.npz"):
        if prefix or not path.name.startswith(TFIDF):
            path.unlink(missing_ok=True)
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
