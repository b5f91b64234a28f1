"""ticketml.logistic against scikit-learn's LogisticRegression(lbfgs), which it replaces."""

import re

import numpy as np
import pytest
from scipy import sparse
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from ticketml.logistic import fit_logistic, row_shards


def data(n_classes: int, sparse_float32: bool):
    x, y = make_classification(
        n_samples=1500, n_features=60, n_informative=20, n_classes=n_classes,
        weights=None if n_classes > 2 else [0.8, 0.2], random_state=n_classes,
    )  # fmt: skip
    labels = np.array([f"c{v}" for v in y])
    if sparse_float32:
        x = sparse.csr_matrix(np.where(np.abs(x) > 1.0, x, 0.0).astype(np.float32))
    return x, labels


@pytest.mark.parametrize("n_classes", [2, 5])
@pytest.mark.parametrize("sparse_float32", [False, True])
@pytest.mark.parametrize("engine", ["1 thread", "3 threads", "torch"])
def test_fit_is_scikit_learns_model(n_classes, sparse_float32, engine):
    # "torch": the whole solver as a GPU runs it (DeviceLoss + device_lbfgs), on torch's CPU
    x, labels = data(n_classes, sparse_float32)
    ref = LogisticRegression(C=5.0, class_weight="balanced", max_iter=2000).fit(x, labels)
    where = {"device": "cpu"} if engine == "torch" else {"threads": int(engine[0])}
    fit = fit_logistic(x, labels, 5.0, "balanced", max_iter=2000, **where)
    assert list(fit.classes) == list(ref.classes_)
    assert fit.coef.shape == ref.coef_.shape and fit.intercept.shape == ref.intercept_.shape
    # the same optimum, up to where lbfgs stops (gtol 1e-4) and the order of sums
    scale = np.abs(ref.coef_).max()
    assert np.abs(fit.coef - ref.coef_).max() < 0.02 * scale
    assert np.mean(fit.predict(x) == ref.predict(x)) > 0.995
    margin = ref.decision_function(x)
    ours = fit.decision_function(x)
    assert np.abs(ours.reshape(margin.shape) - margin).max() < 0.05 * np.abs(margin).max()
    assert 0 < fit.n_iter < 2000


def test_unweighted_and_threads_change_nothing_but_rounding():
    x, labels = data(4, False)
    ref = LogisticRegression(C=1.0, max_iter=2000).fit(x, labels)
    one = fit_logistic(x, labels, 1.0, None, max_iter=2000, threads=1)
    four = fit_logistic(x, labels, 1.0, None, max_iter=2000, threads=4)
    np.testing.assert_allclose(one.coef, ref.coef_, atol=2e-3)
    np.testing.assert_allclose(four.coef, one.coef, atol=2e-3)
    assert one.n_iter == ref.n_iter_[0]


def test_row_shards_share_the_matrix_and_cover_every_row():
    x = sparse.random(1200, 30, density=0.2, format="csr", random_state=0)
    shards = row_shards(x, 4)
    assert len(shards) == 4
    assert sum(block.shape[0] for _, block in shards) == 1200
    assert all(np.shares_memory(block.data, x.data) for _, block in shards)
    back = sparse.vstack([block for _, block in shards])
    assert (back != x).nnz == 0
    assert len(row_shards(x[:300], 8)) == 1  # shards of fewer than MIN_SHARD_ROWS are merged


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="2\\+ classes"):
        fit_logistic(np.eye(3), np.array(["a", "a", "a"]), 1.0)
    labels = np.array(["a", "b", "a"])
    with pytest.raises(ValueError, match="C must be a positive number, got -1"):
        fit_logistic(np.eye(3), labels, -1.0)
    with pytest.raises(ValueError, match="max_iter and tol"):
        fit_logistic(np.eye(3), labels, 1.0, max_iter=-5)


def test_the_device_solver_stops_at_max_iter_with_a_warning(caplog):
    x, labels = data(5, False)
    with caplog.at_level("WARNING", logger="ticketml.logistic"):
        fit = fit_logistic(x, labels, 5.0, "balanced", max_iter=3, device="cpu")
    assert fit.n_iter == 3
    assert "lbfgs on cpu stopped after 3 iterations" in caplog.text


def test_the_heads_device_is_chosen_and_checked():
    import torch
    from omegaconf import OmegaConf

    from ticketml.baseline import head_device
    from ticketml.errors import ModelError

    assert head_device(OmegaConf.create({"device": "cpu"})) is None
    with pytest.raises(ModelError, match=re.escape("baseline.device=tpu: auto | cpu | cuda")):
        head_device(OmegaConf.create({"device": "tpu"}))
    if not torch.cuda.is_available():
        assert head_device(OmegaConf.create({"device": "auto"})) is None
        with pytest.raises(ModelError, match="torch sees no CUDA device"):
            head_device(OmegaConf.create({"device": "cuda"}))
    else:
        assert head_device(OmegaConf.create({"device": "auto"})) == "cuda"
