"""The TF-IDF baseline in numpy: one implementation for fitting (`ticketml baseline`) and serving.

Features are scikit-learn's TfidfVectorizer, twice (word 1–2-grams and char_wb 2–5-grams,
lowercased, sublinear tf, smooth idf, l2 per block), shared by every task; each task is a linear
head (multinomial logistic regression) on them. No scikit-learn, no pickle at serving time: a
model is one `.npz` of plain arrays. Char n-grams become exact integer keys without a Python loop
per character (see CharKeys). `ticketml baseline` checks every model it saves against
scikit-learn's TfidfVectorizer to 1e-6 before anything uses it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from .probability import softmax

TOKEN = re.compile(r"(?u)\b\w\w+\b")  # scikit-learn's default token_pattern
FORMAT = 2  # baseline.npz layout version


def word_ngrams(text: str, low: int, high: int) -> list[str]:
    """scikit-learn's word analyzer on lowercased text: tokens, then space-joined n-grams."""
    tokens = TOKEN.findall(text)
    out = list(tokens) if low == 1 else []
    for n in range(max(low, 2), min(high, len(tokens)) + 1):
        out.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return out


class CharKeys:
    """scikit-learn's char_wb n-grams as exact uint64 keys.

    Each whitespace-separated word is padded with a space on both sides and cut into windows of
    `low`..`high` characters (a padded word shorter than `low` counts once, whole). Characters are
    numbered 1..A in code-point order and a window is packed in base A+1, first character
    highest, so keys sort exactly like the strings they stand for. A character outside the
    alphabet (never seen in training) makes its windows unknown: they cannot be features.
    """

    def __init__(self, alphabet: np.ndarray, low: int, high: int):
        self.alphabet = np.unique(np.append(np.asarray(alphabet, dtype=np.uint32), 32))
        self.low, self.high = int(low), int(high)
        base = len(self.alphabet) + 1
        if base**self.high > 2**64:
            raise ValueError(
                f"{len(self.alphabet)} distinct characters do not fit char n-grams of "
                f"{self.high} in 64-bit keys (at most {int(2 ** (64 / self.high)) - 1}): "
                f"lower baseline.char_ngram_max"
            )
        self.base = base
        self.table = np.zeros(int(self.alphabet[-1]) + 2, dtype=np.uint64)
        self.table[self.alphabet] = np.arange(1, base, dtype=np.uint64)
        self.powers = [np.uint64(base ** (self.high - 1 - k)) for k in range(self.high)]

    @classmethod
    def for_texts(cls, texts: list[str], low: int, high: int) -> CharKeys:
        """The alphabet of a training corpus: every non-space character of its lowercased text."""
        chars: set[str] = set()
        for text in texts:
            chars.update(text.lower())
        codes = sorted(ord(c) for c in chars if not c.isspace())
        return cls(np.array(codes, dtype=np.uint32), low, high)

    def keys(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(text index, key) of every char_wb n-gram of `texts` whose characters are all known."""
        docs_words = [t.lower().split() for t in texts]
        words = [w for ws in docs_words for w in ws]
        if not words:
            return np.zeros(0, np.int64), np.zeros(0, np.uint64)
        per_doc = np.fromiter(map(len, docs_words), np.int64, len(docs_words))
        lens = np.fromiter(map(len, words), np.int64, len(words)) + 2
        joined = (" " + "  ".join(words) + " ").encode("utf-32-le", "surrogatepass")
        codes = np.frombuffer(joined, dtype=np.uint32)
        sym = self.table[np.minimum(codes, len(self.table) - 1)]
        ends = np.cumsum(lens)
        starts = ends - lens
        word_of = np.repeat(np.arange(len(words)), lens)
        end_of = ends[word_of]
        doc_of_word = np.repeat(np.arange(len(texts)), per_doc)
        unknown = np.concatenate([[0], np.cumsum(sym == 0)])
        size = len(sym)
        padded = np.concatenate([sym, np.zeros(self.high, np.uint64)])
        positions = np.arange(size)
        acc = np.zeros(size, np.uint64)
        out_docs, out_keys = [], []
        for k in range(self.high):
            n = k + 1
            acc += padded[k : k + size] * self.powers[k]
            if n < self.low:  # a padded word shorter than `low` counts once, whole
                sel = starts[lens == n]
            else:
                sel = np.flatnonzero(positions + n <= end_of)
            sel = sel[unknown[sel + n] == unknown[sel]]
            out_docs.append(doc_of_word[word_of[sel]])
            out_keys.append(acc[sel])
        return np.concatenate(out_docs), np.concatenate(out_keys)

    def decode(self, keys: np.ndarray) -> list[str]:
        """The n-gram strings behind keys (for inspection and the scikit-learn parity check)."""
        out = []
        for key in np.asarray(keys, dtype=np.uint64).tolist():
            digits = []
            for _ in range(self.high):
                key, digit = divmod(key, self.base)
                digits.append(digit)
            out.append("".join(chr(self.alphabet[d - 1]) for d in reversed(digits) if d))
        return out


def tfidf_values(
    docs: np.ndarray,
    cols: np.ndarray,
    n_docs: int,
    idf: np.ndarray,
    sublinear: bool = True,
    counts: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, col, value) of one l2-normalised TF-IDF block, rows ascending, from one
    (doc, column) pair per term occurrence, or from distinct pairs and their `counts`."""
    if counts is None:
        width = max(len(idf), 1)
        pairs, counts = np.unique(docs.astype(np.int64) * width + cols, return_counts=True)
        rows, cols = pairs // width, pairs % width
    else:
        rows = docs
    tf = 1.0 + np.log(counts) if sublinear else counts.astype(np.float64)
    values = tf * idf[cols]
    norms = np.sqrt(np.bincount(rows, weights=values * values, minlength=n_docs))
    return rows, cols, values / norms[rows]


class TfidfFeatures:
    """The fitted transform: word and char_wb vocabularies with their idf, shared by all tasks."""

    def __init__(
        self,
        word_vocab: list[str],
        word_idf: np.ndarray,
        word_range: tuple[int, int],
        chars: CharKeys,
        char_keys: np.ndarray,
        char_idf: np.ndarray,
        sublinear: bool = True,
    ):
        self.word_vocab, self.word_idf = word_vocab, np.asarray(word_idf, dtype=np.float64)
        self.word_range = (int(word_range[0]), int(word_range[1]))
        self.word_index = {term: i for i, term in enumerate(word_vocab)}
        self.chars, self.char_keys = chars, np.asarray(char_keys, dtype=np.uint64)
        self.char_idf = np.asarray(char_idf, dtype=np.float64)
        self.sublinear = sublinear

    @property
    def n_features(self) -> int:
        return len(self.word_vocab) + len(self.char_keys)

    def word_block(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        index, low, high = self.word_index, *self.word_range
        docs, cols = [], []
        for i, text in enumerate(texts):
            ids = [j for j in map(index.get, word_ngrams(text.lower(), low, high)) if j is not None]
            cols.extend(ids)
            docs.extend([i] * len(ids))
        return tfidf_values(
            np.asarray(docs, dtype=np.int64),
            np.asarray(cols, dtype=np.int64),
            len(texts),
            self.word_idf,
            self.sublinear,
        )

    def char_block(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        docs, keys = self.chars.keys(texts)
        if len(self.char_keys):
            cols = np.minimum(np.searchsorted(self.char_keys, keys), len(self.char_keys) - 1)
            known = self.char_keys[cols] == keys
            docs, cols = docs[known], cols[known]
        else:
            docs, cols = docs[:0], np.zeros(0, np.int64)
        return tfidf_values(docs, cols, len(texts), self.char_idf, self.sublinear)

    def transform(self, texts: list[str]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """[(rows, cols, values) of the word block, the same of the char block (columns after the
        word block's)]: the sparse matrix scikit-learn's FeatureUnion would give."""
        rows, cols, values = self.char_block(texts)
        return [self.word_block(texts), (rows, cols + len(self.word_vocab), values)]

    def to_arrays(self) -> dict[str, np.ndarray]:
        if any("\n" in term for term in self.word_vocab):
            raise ValueError("a word n-gram contains a newline")
        return {
            "word_vocab": np.array("\n".join(self.word_vocab)),
            "word_idf": self.word_idf,
            "char_alphabet": self.chars.alphabet,
            "char_keys": self.char_keys,
            "char_idf": self.char_idf,
        }

    @classmethod
    def from_arrays(cls, arrays: dict, meta: dict) -> TfidfFeatures:
        vocab = str(arrays["word_vocab"])
        low, high = meta["char_ngram_range"]
        return cls(
            vocab.split("\n") if vocab else [],
            arrays["word_idf"],
            tuple(meta["word_ngram_range"]),
            CharKeys(arrays["char_alphabet"], low, high),
            arrays["char_keys"],
            arrays["char_idf"],
            bool(meta["sublinear_tf"]),
        )


class TfidfClassifier:
    """Shared TF-IDF features + one softmax head per task; probabilities in label-map order.

    `coef` is (n_features, sum of classes over tasks): every task's weights side by side, so
    scoring all tasks is one gather over the features a text has.
    """

    def __init__(
        self,
        features: TfidfFeatures,
        coef: np.ndarray,
        intercept: np.ndarray,
        labels: dict[str, list[str]],
        meta: dict | None = None,
    ):
        self.features = features
        self.coef = np.ascontiguousarray(coef, dtype=np.float64)
        self.intercept = np.asarray(intercept, dtype=np.float64)
        self.labels = labels
        self.meta = meta or {}
        self.columns, start = {}, 0
        for task, names in labels.items():
            self.columns[task] = slice(start, start + len(names))
            start += len(names)
        if self.coef.shape != (features.n_features, start):
            raise ValueError(
                f"coef shape {self.coef.shape} does not match {features.n_features} features "
                f"and {start} classes"
            )

    @classmethod
    def load(cls, path: str | Path) -> TfidfClassifier:
        """Read a baseline.npz (plain arrays: allow_pickle=False)."""
        from .bundle import read_arrays

        arrays, meta = read_arrays(path, "baseline", FORMAT, "rerun `ticketml baseline`")
        return cls(
            TfidfFeatures.from_arrays(arrays, meta),
            arrays["coef"],
            arrays["intercept"],
            meta["labels"],
            meta,
        )

    def to_arrays(self) -> dict[str, np.ndarray]:
        meta = {**self.meta, "format": FORMAT, "labels": self.labels}
        return {
            **self.features.to_arrays(),
            "coef": self.coef,
            "intercept": self.intercept,
            "meta": np.array(json.dumps(meta)),
        }

    def decision_function(self, texts: list[str], blocks: list | None = None) -> np.ndarray:
        """Linear scores of every task's classes, (len(texts), sum of classes); `blocks`: the
        texts' features.transform where the caller has it already (the served pool's votes
        search its word block)."""
        scores = np.tile(self.intercept, (len(texts), 1))
        blocks = self.features.transform(list(texts)) if blocks is None else blocks
        for rows, cols, values in blocks:
            if not len(rows):
                continue
            contrib = self.coef[cols] * values[:, None]
            present, first = np.unique(rows, return_index=True)
            scores[present] += np.add.reduceat(contrib, first, axis=0)
        return scores

    def predict_proba(self, texts: list[str], blocks: list | None = None) -> dict[str, np.ndarray]:
        scores = self.decision_function(texts, blocks)
        return {task: softmax(scores[:, cols]) for task, cols in self.columns.items()}
