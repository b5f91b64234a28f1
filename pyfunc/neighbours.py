"""The hybrid's third expert: the training tickets most like a new one vote for their labels.

Support exports repeat themselves (the same failure reported again, a sub-task cloned from its
story, a templated request): the most similar training tickets' labels are evidence that neither
the transformer nor the baseline's per-term weights hold. Similarity is the cosine of the
baseline's own word TF-IDF vectors (pyfunc.tfidf.TfidfFeatures.word_block: the transform the
model already ships, no second vectoriser), each training vector kept to its TOP_TERMS heaviest
terms (re-normalised) so the index stays small: one inverted list per term, searched with numpy
alone (the serving core imports no scipy). A query's `k` nearest tickets vote with weight
exp(similarity / temperature); a class none of them has keeps a floor of SMOOTHING / classes.

`neighbours.npz` (pyfunc.bundle's "neighbours") holds the index and each training row's label
per task (-1: unlabelled for that task, no vote); hybrid.json's pool entry says per task how
much the votes weigh ("neighbour_weight") and with which `k` and temperature ("neighbours").
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

TOP_TERMS = 64  # terms kept per training ticket
MAX_K = 30  # the most neighbours a task's vote may read (the search keeps this many)
SMOOTHING = 0.01  # probability mass spread evenly over the classes: no class is impossible
CHUNK_CELLS = 2**24  # query rows x training rows scored at once (64 MiB of float32)
CHUNK_POSTINGS = 2**22  # postings read at once (about 100 MiB of index arithmetic)
MAX_WORKERS = 8  # chunks searched at once at the most (memory: each holds up to the two above)
FORMAT = 1


class Neighbours:
    """An inverted index of the training tickets' pruned word TF-IDF vectors and their labels."""

    def __init__(
        self,
        indptr: np.ndarray,
        docs: np.ndarray,
        values: np.ndarray,
        labels: dict[str, np.ndarray],
        n_classes: dict[str, int],
    ):
        self.indptr = np.asarray(indptr, dtype=np.int64)  # per term: where its postings start
        self.docs = np.asarray(docs, dtype=np.int32)
        self.values = np.asarray(values, dtype=np.float32)
        self.labels = {t: np.asarray(y, dtype=np.int64) for t, y in labels.items()}
        self.n_classes = {t: int(n) for t, n in n_classes.items()}
        self.n_docs = len(next(iter(self.labels.values()))) if self.labels else 0

    @classmethod
    def build(
        cls,
        word_block: tuple[np.ndarray, np.ndarray, np.ndarray],
        n_terms: int,
        labels: dict[str, np.ndarray],
        n_classes: dict[str, int],
        top_terms: int = TOP_TERMS,
    ) -> Neighbours:
        """The index of the training rows' word block ((row, col, value), rows ascending, as
        TfidfFeatures.word_block gives it), each row kept to its `top_terms` heaviest terms."""
        rows, cols, values = (np.asarray(a) for a in word_block)
        order = np.lexsort((-values, rows))  # by row, heaviest first
        rows, cols, values = rows[order], cols[order], values[order]
        starts = np.searchsorted(rows, rows, side="left")
        keep = np.arange(len(rows)) - starts < top_terms
        rows, cols, values = rows[keep], cols[keep], values[keep]
        n_docs = len(next(iter(labels.values())))
        norms = np.sqrt(np.bincount(rows, weights=values * values, minlength=n_docs))
        values = values / np.where(norms > 0, norms, 1.0)[rows]
        by_term = np.lexsort((rows, cols))
        indptr = np.concatenate([[0], np.cumsum(np.bincount(cols, minlength=n_terms))])
        return cls(indptr, rows[by_term], values[by_term], labels, n_classes)

    def search(
        self,
        query: tuple[np.ndarray, np.ndarray, np.ndarray],
        n_queries: int,
        k: int = MAX_K,
        workers: int = 1,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(index, similarity) of each query row's `k` most similar training rows, most similar
        first, for a word block of the query texts; similarity 0 where fewer share a term.
        `workers`: chunks of query rows searched at once, each on its own thread (a whole
        split; numpy leaves the GIL for part of the work: 1.49x on 2 cores at 40k tickets,
        bench/neighbours_cost.py)."""
        k = min(k, self.n_docs)
        index = np.zeros((n_queries, k), dtype=np.int64)
        sims = np.zeros((n_queries, k), dtype=np.float32)
        rows, cols, values = (np.asarray(a) for a in query)

        def chunk(bounds: tuple[int, int]) -> None:  # each chunk writes its own rows
            start, stop = bounds
            lo, hi = np.searchsorted(rows, [start, stop])
            dense = self._similarities(
                rows[lo:hi] - start, cols[lo:hi], values[lo:hi], stop - start
            )
            if k < self.n_docs:
                top = np.argpartition(-dense, k - 1, axis=1)[:, :k]
            else:
                top = np.broadcast_to(np.arange(k), (stop - start, k))
            best = np.take_along_axis(dense, top, 1)
            order = np.argsort(-best, axis=1, kind="stable")
            index[start:stop] = np.take_along_axis(top, order, 1)
            sims[start:stop] = np.take_along_axis(best, order, 1)

        chunks = self._chunks(rows, cols, n_queries)
        if workers > 1 and len(chunks) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(min(workers, len(chunks), MAX_WORKERS)) as pool:
                list(pool.map(chunk, chunks))
        else:
            for bounds in chunks:
                chunk(bounds)
        return index, sims

    def _chunks(self, rows, cols, n_queries: int) -> list[tuple[int, int]]:
        """Query rows in runs of at most CHUNK_CELLS similarities and CHUNK_POSTINGS postings
        read (a row of many common terms reads many), so memory stays bounded."""
        postings = np.bincount(
            rows, weights=self.indptr[cols + 1] - self.indptr[cols], minlength=n_queries
        )
        cells = max(1, CHUNK_CELLS // max(self.n_docs, 1))
        out, start, total = [], 0, 0.0
        for i, n in enumerate(postings):
            if i > start and (i - start >= cells or total + n > CHUNK_POSTINGS):
                out.append((start, i))
                start, total = i, 0.0
            total += n
        if start < n_queries:
            out.append((start, n_queries))
        return out

    def _similarities(self, rows, cols, values, n_rows: int) -> np.ndarray:
        """Cosine similarities (n_rows, training rows) of query rows from their postings."""
        lengths = self.indptr[cols + 1] - self.indptr[cols]
        total = int(lengths.sum())
        out = np.zeros(n_rows * self.n_docs, dtype=np.float32)
        if total:
            # every posting of every query term: its training row and weight
            first = np.repeat(self.indptr[cols] - np.cumsum(lengths) + lengths, lengths)
            at = first + np.arange(total)
            weight = np.repeat(values.astype(np.float32), lengths) * self.values[at]
            target = np.repeat(rows.astype(np.int64), lengths) * self.n_docs + self.docs[at]
            out += np.bincount(target, weights=weight, minlength=n_rows * self.n_docs).astype(
                np.float32
            )
        return out.reshape(n_rows, self.n_docs)

    def votes(
        self, found: tuple[np.ndarray, np.ndarray], task: str, k: int, temperature: float
    ) -> np.ndarray:
        """One task's probabilities from the `k` nearest of `found` (search's result)."""
        index, sims = found[0][:, :k], found[1][:, :k]
        n = self.n_classes[task]
        labels = self.labels[task][index]
        weight = np.exp((sims.astype(np.float64) - 1.0) / float(temperature))  # <= 1: no overflow
        weight = np.where((labels >= 0) & (sims > 0), weight, 0.0)
        probs = np.zeros((len(index), n))
        rows = np.repeat(np.arange(len(index)), index.shape[1])
        np.add.at(probs, (rows, np.clip(labels, 0, None).ravel()), weight.ravel())
        total = probs.sum(1, keepdims=True)
        probs = np.divide(probs, total, out=np.full_like(probs, 1.0 / n), where=total > 0)
        return (1 - SMOOTHING) * probs + SMOOTHING / n

    def votes_for(
        self, entries: dict[str, dict], found: tuple[np.ndarray, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """Per task whose hybrid.json entry weighs the neighbours, their votes from `found`
        (search's result, with at least that entry's k neighbours a row)."""
        return {
            t: self.votes(
                found, t, int(e["neighbours"]["k"]), float(e["neighbours"]["temperature"])
            )
            for t, e in entries.items()
            if e.get("neighbour_weight")
        }

    def to_arrays(self) -> dict[str, np.ndarray]:
        meta = {"format": FORMAT, "n_classes": self.n_classes, "tasks": list(self.labels)}
        return {
            "indptr": self.indptr,
            "docs": self.docs,
            "values": self.values.astype(np.float16),
            **{f"labels_{t}": y.astype(np.int16) for t, y in self.labels.items()},
            "meta": np.array(json.dumps(meta)),
        }

    def save(self, path: str | Path) -> None:
        np.savez_compressed(path, **self.to_arrays())

    @classmethod
    def load(cls, path: str | Path) -> Neighbours:
        """Read a neighbours.npz (plain arrays: allow_pickle=False)."""
        from .bundle import read_arrays

        arrays, meta = read_arrays(path, "neighbours", FORMAT)
        labels = {t: arrays[f"labels_{t}"] for t in meta["tasks"]}
        return cls(arrays["indptr"], arrays["docs"], arrays["values"], labels, meta["n_classes"])
