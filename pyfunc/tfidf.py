"""TF-IDF + LogisticRegression inference in numpy, from arrays exported off the fitted sklearn
pipelines (no pickle, no scikit-learn at serving time). Mirrors sklearn's word and char_wb
analyzers; `ticketml export_onnx` checks parity against sklearn before anything uses it."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from pathlib import Path

import numpy as np

_TOKEN = re.compile(r"(?u)\b\w\w+\b")  # sklearn's default token_pattern
_WHITE = re.compile(r"\s\s+")


def word_ngrams(text: str, low: int, high: int) -> list[str]:
    tokens = _TOKEN.findall(text)
    out = list(tokens) if low == 1 else []
    for n in range(max(low, 2), min(high, len(tokens)) + 1):
        out.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return out


def char_wb_ngrams(text: str, low: int, high: int) -> list[str]:
    out = []
    for word in _WHITE.sub(" ", text).split():
        w = f" {word} "
        for n in range(low, high + 1):
            offset = 0
            out.append(w[offset : offset + n])
            while offset + n < len(w):
                offset += 1
                out.append(w[offset : offset + n])
            if offset == 0:  # a word shorter than n is counted once
                break
    return out


class Vectorizer:
    def __init__(self, meta: dict, vocabulary: list[str], idf: np.ndarray):
        self.analyzer, (self.low, self.high) = meta["analyzer"], meta["ngram_range"]
        self.lowercase, self.sublinear = meta["lowercase"], meta["sublinear_tf"]
        self.index = {term: i for i, term in enumerate(vocabulary)}
        self.idf = idf

    def transform_one(self, text: str) -> dict[int, float]:
        text = text.lower() if self.lowercase else text
        grams = (
            word_ngrams(text, self.low, self.high)
            if self.analyzer == "word"
            else char_wb_ngrams(text, self.low, self.high)
        )
        counts = Counter(self.index[g] for g in grams if g in self.index)
        values = {
            i: ((1.0 + math.log(c)) if self.sublinear else float(c)) * self.idf[i]
            for i, c in counts.items()
        }
        norm = math.sqrt(sum(v * v for v in values.values()))
        return {i: v / norm for i, v in values.items()} if norm > 0 else {}


class TfidfClassifier:
    """Per-task class probabilities, columns in label-map order."""

    def __init__(self, path: str | Path):
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            self.tasks = {}
            for task, spec in meta["tasks"].items():
                vectorizers, offset = [], 0
                for j, vmeta in enumerate(spec["vectorizers"]):
                    vocab = str(data[f"{task}_vocab_{j}"]).split("\n") if vmeta["size"] else []
                    vectorizers.append((offset, Vectorizer(vmeta, vocab, data[f"{task}_idf_{j}"])))
                    offset += vmeta["size"]
                self.tasks[task] = (vectorizers, data[f"{task}_coef"], data[f"{task}_intercept"])

    def predict_proba(self, texts: list[str]) -> dict[str, np.ndarray]:
        out = {}
        for task, (vectorizers, coef, intercept) in self.tasks.items():
            scores = np.tile(intercept, (len(texts), 1)).astype(np.float64)
            for row, text in enumerate(texts):
                for offset, vec in vectorizers:
                    features = vec.transform_one(text)
                    if features:
                        idx = np.fromiter(features.keys(), dtype=np.int64) + offset
                        scores[row] += coef[:, idx] @ np.fromiter(
                            features.values(), dtype=np.float64
                        )
            if coef.shape[0] == 1:  # binary LogisticRegression: one column of decision scores
                p = 1.0 / (1.0 + np.exp(-scores[:, 0]))
                out[task] = np.stack([1 - p, p], axis=1)
            else:
                z = np.exp(scores - scores.max(axis=1, keepdims=True))
                out[task] = z / z.sum(axis=1, keepdims=True)
        return out
