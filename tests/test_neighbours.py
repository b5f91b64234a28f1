"""The pool's third expert (pyfunc.neighbours): the search against brute force, the votes, the
file, and the hybrid weighing it (ticketml.hybrid.with_neighbours, pyfunc.core.combine)."""

import numpy as np
import pytest
from omegaconf import OmegaConf

from pyfunc.core import combine
from pyfunc.neighbours import Neighbours
from ticketml.baseline import fit_features
from ticketml.hybrid import fit_pool, with_neighbours

TEXTS = [
    "VPN disconnects every hour after the client update",
    "VPN client drops the connection every hour",
    "Refund my invoice, I was charged twice this month",
    "Charged twice on the invoice, please refund",
    "Password reset link expired, cannot log in",
    "Cannot log in: the reset link has expired",
    "Export the monthly report as CSV please",
    "NullPointerException at com.acme.Main.start(Main.java:42)",
]
TOPIC = np.array([0, 0, 1, 1, 2, 2, 3, -1])  # the last row has no topic label: it never votes
BASELINE = OmegaConf.create(
    {"word_ngram_max": 2, "char_ngram_min": 2, "char_ngram_max": 4, "word_min_df": 1}
    | {"char_min_df": 1, "max_features": 0}
)


@pytest.fixture(scope="module")
def features():
    return fit_features(TEXTS, BASELINE)[0]


def index_of(features, top_terms: int = 64) -> Neighbours:
    return Neighbours.build(
        features.word_block(TEXTS),
        len(features.word_vocab),
        {"topic": TOPIC},
        {"topic": 4},
        top_terms,
    )


def dense(block, n_rows: int, n_cols: int) -> np.ndarray:
    out = np.zeros((n_rows, n_cols))
    rows, cols, values = block
    out[rows, cols] = values
    return out


def test_the_search_finds_brute_force_cosine_neighbours_most_similar_first(features):
    index = index_of(features)
    queries = ["the VPN keeps dropping every hour", "refund: charged twice", "zzz qqq"]
    found, sims = index.search(features.word_block(queries), len(queries), k=3)
    train = dense(features.word_block(TEXTS), len(TEXTS), len(features.word_vocab))
    query = dense(features.word_block(queries), len(queries), len(features.word_vocab))
    brute = query @ train.T
    for row in range(2):
        assert set(found[row]) == set(np.argsort(-brute[row])[:3])
        assert np.allclose(sims[row], np.sort(brute[row])[::-1][:3], atol=1e-3)  # fp16 values
        assert (np.diff(sims[row]) <= 0).all()
    assert found[0][0] in (0, 1) and found[1][0] in (2, 3)
    assert (sims[2] == 0).all()  # shares no word with any training ticket


def test_a_split_searched_in_chunks_on_threads_finds_what_one_pass_finds(features, monkeypatch):
    import pyfunc.neighbours

    index = index_of(features)
    queries = [t.lower() + " again" for t in TEXTS] * 5
    block = features.word_block(queries)
    whole = index.search(block, len(queries), k=4)
    monkeypatch.setattr(pyfunc.neighbours, "CHUNK_CELLS", 3 * index.n_docs)  # 3 rows a chunk
    assert len(index._chunks(block[0], block[1], len(queries))) == 14
    for workers in (1, 4):
        found, sims = index.search(block, len(queries), k=4, workers=workers)
        np.testing.assert_array_equal(found, whole[0])
        np.testing.assert_array_equal(sims, whole[1])


def test_pruning_keeps_each_training_ticket_to_its_heaviest_terms(features):
    full, pruned = index_of(features), index_of(features, top_terms=2)
    assert len(pruned.docs) == 2 * len(TEXTS) < len(full.docs)
    norms = np.bincount(pruned.docs, weights=pruned.values.astype(float) ** 2)
    assert np.allclose(norms, 1.0, atol=1e-3)  # re-normalised after pruning


def test_votes_follow_the_neighbours_labels_and_unlabelled_rows_never_vote(features):
    index = index_of(features)
    queries = ["VPN connection drops every hour", "NullPointerException at Main.java:42", "zzz"]
    found = index.search(features.word_block(queries), len(queries))
    votes = index.votes(found, "topic", k=2, temperature=0.05)
    assert votes.shape == (3, 4) and np.allclose(votes.sum(1), 1.0)
    assert votes[0].argmax() == 0 and votes[0, 0] > 0.9
    # its one similar ticket is unlabelled: the vote is the even floor, not class 0
    assert np.allclose(votes[2], 0.25) and np.allclose(votes[1], votes[1].mean(), atol=0.3)


def test_the_file_round_trips_and_refuses_another_format(tmp_path, features):
    index = index_of(features)
    index.save(tmp_path / "neighbours.npz")
    back = Neighbours.load(tmp_path / "neighbours.npz")
    query = features.word_block(["refund the invoice charged twice"])
    a, b = index.search(query, 1), back.search(query, 1)
    assert (a[0] == b[0]).all() and np.allclose(a[1], b[1], atol=1e-3)
    assert np.allclose(index.votes(a, "topic", 3, 0.1), back.votes(b, "topic", 3, 0.1), atol=1e-3)
    arrays = dict(np.load(tmp_path / "neighbours.npz"))
    arrays["meta"] = np.array('{"format": 99}')
    np.savez(tmp_path / "old.npz", **arrays)
    with pytest.raises(ValueError, match="neighbours format 99"):
        Neighbours.load(tmp_path / "old.npz")


def noisy(labels: np.ndarray, k: int, right: float, rng) -> np.ndarray:
    """Probabilities that put `right` on the true class of most rows, on a random one else."""
    out = np.full((len(labels), k), (1 - right) / (k - 1))
    hit = rng.random(len(labels)) < 0.7
    out[np.arange(len(labels)), np.where(hit, labels, rng.integers(0, k, len(labels)))] = right
    return out


def test_the_pool_weighs_votes_that_carry_signal_and_leaves_out_noise():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 600)
    transformer, baseline = noisy(labels, 4, 0.6, rng), noisy(labels, 4, 0.6, rng)
    entry = fit_pool(transformer, baseline, labels)
    assert "neighbour_weight" not in entry

    def telling(k, t):
        return noisy(labels, 4, 0.8, rng)

    helped, votes = with_neighbours(entry, transformer, baseline, labels, telling)
    assert helped["neighbour_weight"] > 0.1 and helped["val_nll"] < entry["val_nll"]
    # with folds, kept only where they also win out-of-fold macro-F1: these do
    gated, _ = with_neighbours(entry, transformer, baseline, labels, telling, folds=5)
    assert gated["neighbour_weight"] > 0.1
    assert helped["neighbours"]["k"] in (5, 10, 30) and votes is not None
    mixed = combine(helped, transformer, baseline, neighbours=votes)
    assert np.allclose(mixed.sum(1), 1.0)
    with pytest.raises(ValueError, match="training tickets' votes"):
        combine(helped, transformer, baseline)  # never silently without them

    def uniform(k, t):
        return np.full((len(labels), 4), 0.25)

    same, none = with_neighbours(entry, transformer, baseline, labels, uniform)
    assert same == entry and none is None
