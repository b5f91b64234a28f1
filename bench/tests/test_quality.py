"""The quality benchmarks' own logic: the synthetic ceiling and the blend comparison."""

import numpy as np
import pytest

from bench.blend import candidates, shipped_weights
from bench.ceiling import measure
from ticketml.hybrid import macro_f1


@pytest.mark.slow  # end to end: over 10 s on 2 cores
def test_ceiling_scores_every_test_row_and_sits_above_the_baseline_on_a_large_split(workdir):
    result = measure(["data.synthetic.n_samples=6000", "seed=7"])
    test = result["splits"]["test"]
    assert test["all"]["ceiling"]["topic"]["n"] == test["all"]["baseline"]["topic"]["n"] > 800
    assert set(test) == {"all", "en", "ru"}
    for task in ("topic", "priority"):
        ceiling, baseline = test["all"]["ceiling"][task], test["all"]["baseline"][task]
        assert ceiling["accuracy"] > baseline["accuracy"]
    assert test["all"]["ceiling"]["topic"]["accuracy"] > 0.93  # 5% label noise, nothing else
    assert 0.75 < test["all"]["ceiling"]["priority"]["accuracy"] < 0.88


def test_blend_candidates_are_fitted_on_val_and_scored_on_test():
    rng = np.random.default_rng(0)
    n, k = 300, 3
    d = {}
    for split in ("val", "test"):
        y = rng.integers(k, size=n)
        d[f"{split}_labels_priority"] = d[f"{split}_labels_topic"] = y
        good = np.full((n, k), 0.1)
        good[np.arange(n), y] = 0.8
        noise = rng.dirichlet(np.ones(k), size=n)
        for task in ("topic", "priority"):
            d[f"{split}_transformer_{task}"] = good
            d[f"{split}_baseline_{task}"] = noise
    scores = candidates(d, "topic", shipped_weights(d)["topic"])
    assert scores["transformer"] == 1.0
    assert scores["baseline"] < 0.5
    assert scores["hybrid (shipped)"] == 1.0  # val says: trust the transformer
    assert scores["log-linear"] == 1.0
    assert scores["class bias"] == 1.0
    assert scores["stacking C=1.0"] > 0.95


def test_blend_candidates_leave_out_unlabelled_rows_and_the_class_bias_undoes_a_shift():
    """A partly labelled task (Jira's issue type) is scored on its labelled rows only; a model
    that under-calls one class by a constant margin gets that class back from the bias."""
    rng = np.random.default_rng(1)
    n, k = 600, 3
    d = {}
    for split in ("val", "test"):
        y = rng.integers(k, size=n)
        logits = rng.normal(size=(n, k))
        logits[np.arange(n), y] += 1.5
        logits[:, 2] -= 2.0  # class 2 is called far too rarely
        probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        labels = y.copy()
        labels[: n // 3] = -1  # a third of the rows have no label for the task
        for task in ("topic", "priority"):
            d[f"{split}_labels_{task}"] = labels
            d[f"{split}_transformer_{task}"] = d[f"{split}_baseline_{task}"] = probs
    scores = candidates(d, "priority", shipped_weights(d)["priority"])
    labelled = labels >= 0  # the test split's
    assert scores["baseline"] == macro_f1(labels[labelled], probs[labelled])
    assert scores["baseline"] == scores["transformer"] == scores["hybrid (shipped)"]
    assert scores["class bias"] > scores["baseline"] + 0.05


def test_two_transformers_each_sure_of_other_classes_are_pooled_past_either():
    """--second: a transformer that knows classes 0-1 (and is unsure of 2-3) and one that knows
    2-3: the pool of both with the baseline (fit_pool on val) beats each alone on test."""
    rng = np.random.default_rng(2)
    n, k = 800, 4
    d, other = {}, {}
    for split in ("val", "test"):
        y = rng.integers(k, size=n)
        for run, known in ((d, (0, 1)), (other, (2, 3))):
            p = np.full((n, k), 0.25)
            sure = np.isin(y, known)
            p[sure] = 0.05
            p[sure, y[sure]] = 0.85
            for task in ("topic", "priority"):
                run[f"{split}_labels_{task}"] = y
                run[f"{split}_transformer_{task}"] = p
                run[f"{split}_baseline_{task}"] = rng.dirichlet(np.ones(k), size=n)
    scores = candidates(d, "topic", shipped_weights(d)["topic"], other)
    alone = candidates(other, "topic", shipped_weights(other)["topic"])["transformer"]
    assert max(scores["transformer"], alone) < 0.7
    assert scores["two transformers, pool"] > 0.95


@pytest.mark.slow  # end to end: over 10 s on 2 cores
def test_a_run_saves_its_probabilities_and_rescoring_them_gives_the_same_baseline(
    tmp_path, workdir
):
    from bench.quality import measure as quality
    from bench.quality import rescore

    result = quality(
        "synthetic",
        ["data.synthetic.n_samples=400", "train.max_epochs=1", "train.limit_train_batches=2"],
        probs_dir=tmp_path,
    )
    (saved,) = tmp_path.glob("synthetic_seed*.npz")
    keys = set(np.load(saved).files)
    for split in ("val", "test"):
        for task in ("topic", "priority"):
            assert {f"{split}_{m}_{task}" for m in ("baseline", "transformer", "tempered")} <= keys
    arrays = np.load(saved)
    for split in ("val", "test"):  # each row's language, in the split's order
        assert len(arrays[f"{split}_language"]) == len(arrays[f"{split}_labels_topic"])
        assert set(arrays[f"{split}_language"]) <= {"en", "ru"}
    assert "saved" not in result
    again = rescore(saved, "blend")
    for task in ("topic", "priority"):
        assert again["models"]["baseline"][task]["macro_f1"] == pytest.approx(
            result["models"]["baseline"][task]["macro_f1"]
        )
