"""Class-weighted L2 logistic regression on every core: scikit-learn's LogisticRegression(lbfgs)
objective and solver settings, with the loss and its gradient summed over row shards in threads.

scikit-learn evaluates the loss of a sparse matrix on one core per fit (its sparse products run
in scipy, one call over all rows), so the baseline's heads were the pipeline's critical path on a
many-core GPU box. scipy's sparse-dense products release the GIL, so row shards computed in
threads add up to the same loss and gradient; scipy's L-BFGS-B then takes the same steps as
scikit-learn's (same start, `gtol`, `ftol`, `maxls`), and the fitted model is scikit-learn's up
to the order of floating-point sums (tested against it: tests/test_logistic.py).

On a GPU the whole solver runs there (`device_lbfgs`): the loss, its gradient and L-BFGS's own
step, which on the CPU is scipy's single-threaded Fortran over every coefficient (hundreds of
milliseconds an iteration for the millions of coefficients of a topic head on long tickets, most
of the fit). It minimises the same objective to the same gradient tolerance, so the fitted model
is scikit-learn's up to where the two L-BFGS stop (tested on torch's CPU against scikit-learn).
"""

from __future__ import annotations

import logging
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy import optimize, sparse

log = logging.getLogger(__name__)
MIN_SHARD_ROWS = 256  # a shard smaller than this costs more in Python than it saves
FTOL = 64 * np.finfo(float).eps  # scikit-learn's lbfgs ftol
MAX_EVALS = 15000  # loss evaluations at most: scipy's L-BFGS-B default (maxfun)


@dataclass
class LogisticFit:
    """classes (sorted, as scikit-learn's classes_), coef (1 or classes, features), intercept,
    and the L-BFGS iterations it took."""

    classes: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    n_iter: int

    def decision_function(self, matrix) -> np.ndarray:
        return np.asarray(matrix @ self.coef.T) + self.intercept

    def predict(self, matrix) -> np.ndarray:
        scores = self.decision_function(matrix)
        if len(self.classes) == 2:
            return self.classes[(scores[:, 0] > 0).astype(int)]
        return self.classes[scores.argmax(axis=1)]


def row_shards(matrix, parts: int) -> list[tuple[slice, object]]:
    """Contiguous row blocks as (rows, block); a CSR block shares its parent's data and
    indices (only indptr is new), a dense block is a view."""
    n = matrix.shape[0]
    parts = max(1, min(parts, n // MIN_SHARD_ROWS))
    bounds = np.linspace(0, n, parts + 1).astype(int)
    shards = []
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        if sparse.issparse(matrix):
            lo, hi = matrix.indptr[a], matrix.indptr[b]
            data, indices = matrix.data[lo:hi], matrix.indices[lo:hi]
            block = sparse.csr_matrix(
                (data, indices, matrix.indptr[a : b + 1] - lo), shape=(b - a, matrix.shape[1])
            )
            # scipy's constructor copies a view of a much larger array (its prune): keep views
            block.data, block.indices = data, indices
        else:
            block = matrix[a:b]
        shards.append((slice(a, b), block))
    return shards


def sample_weights(y: np.ndarray, n_classes: int, class_weight, dtype) -> np.ndarray:
    """Each row's weight: 1, or with class_weight="balanced" n / (n_classes x its class's rows)."""
    weights = np.ones(len(y), dtype=dtype)
    if class_weight == "balanced":
        per_class = len(y) / (n_classes * np.bincount(y).astype(np.float64))
        weights *= per_class.astype(dtype)[y]
    elif class_weight is not None:
        raise ValueError(f"class_weight must be 'balanced' or None, got {class_weight!r}")
    return weights


class ShardedLoss:
    """scikit-learn's penalised logistic loss and its gradient, summed over row shards (in
    threads: scipy's sparse products release the GIL), in scipy.optimize's (value, grad) form."""

    def __init__(self, loss, matrix, target, weights, C: float, threads: int, binary: bool):
        self.loss, self.binary, self.n_features = loss, binary, matrix.shape[1]
        self.sw_sum = float(np.sum(weights))
        self.l2 = 1.0 / (C * self.sw_sum)
        self.shards = [
            (block, target[rows], weights[rows], float(np.sum(weights[rows])))
            for rows, block in row_shards(matrix, threads)
        ]

    def shard(self, coef, shard):
        block, t, w, w_sum = shard
        value, grad = self.loss.loss_gradient(coef, block, t, w, 0.0, 1)
        return value * w_sum, grad * w_sum

    def __call__(self, coef, pool):
        if len(self.shards) == 1:
            parts = [self.shard(coef, self.shards[0])]
        else:
            parts = list(pool.map(lambda s: self.shard(coef, s), self.shards))
        value = sum(p[0] for p in parts) / self.sw_sum
        grad = parts[0][1]
        for _, g in parts[1:]:
            grad += g
        grad /= self.sw_sum
        w, _ = self.loss.weight_intercept(coef)
        value += self.loss.l2_penalty(w, self.l2)
        if self.binary:
            grad[: self.n_features] += self.l2 * w
        else:
            grad.reshape((w.shape[0], -1), order="F")[:, : self.n_features] += self.l2 * w
        return value, grad


class DeviceLoss:
    """The same penalised loss and gradient as ShardedLoss, computed by torch on `device` in
    float64, for `device_lbfgs`: the matrix and its transpose stay on the device and so do the
    coefficients, the gradient and L-BFGS's history (nothing crosses to the host per step)."""

    def __init__(self, matrix, y, weights, C: float, n_classes: int, binary: bool, device: str):
        import torch

        def upload(m):
            m = sparse.csr_matrix(m)
            with warnings.catch_warnings():  # "Sparse CSR tensor support is in beta state"
                warnings.simplefilter("ignore", UserWarning)
                return torch.sparse_csr_tensor(
                    torch.from_numpy(m.indptr.astype(np.int64)),
                    torch.from_numpy(m.indices.astype(np.int64)),
                    torch.from_numpy(m.data.astype(np.float64)),
                    size=m.shape,
                    device=device,
                    check_invariants=False,  # scipy's CSR: sorted, in range
                )

        self.torch, self.device, self.binary = torch, device, binary
        self.n_features, self.n_classes = matrix.shape[1], n_classes
        self.x, self.xt = upload(matrix), upload(sparse.csr_matrix(matrix).T)
        sw = torch.from_numpy(weights.astype(np.float64)).to(device)
        self.sw = sw / sw.sum()  # scikit-learn's loss is the weighted mean over the rows
        self.l2 = 1.0 / (C * float(weights.sum()))
        self.y = torch.from_numpy(y.astype(np.int64)).to(device)

    def __call__(self, c):
        """(loss, gradient) at the flat coefficients `c` (a float64 tensor on the device, in
        scikit-learn's layout), both tensors there."""
        torch = self.torch
        n, k = self.n_features, self.n_classes
        if self.binary:
            w, b = c[:n], c[n]
            raw = (self.x @ w[:, None])[:, 0] + b
            t = self.y.to(torch.float64)
            value = (self.sw * (torch.nn.functional.softplus(raw) - t * raw)).sum()
            g = self.sw * (torch.sigmoid(raw) - t)
            grad = torch.cat([(self.xt @ g[:, None])[:, 0] + self.l2 * w, g.sum()[None]])
        else:
            full = c.reshape(n + 1, k)  # scikit-learn's layout: order "F" of (classes, n + 1)
            w, b = full[:n], full[n]
            raw = self.x @ w + b
            lse = torch.logsumexp(raw, dim=1)
            value = (self.sw * (lse - raw.gather(1, self.y[:, None])[:, 0])).sum()
            g = torch.softmax(raw, dim=1)
            g[torch.arange(len(self.y), device=self.device), self.y] -= 1.0
            g *= self.sw[:, None]
            grad = torch.cat([self.xt @ g + self.l2 * w, g.sum(0)[None]]).reshape(-1)
        return value + 0.5 * self.l2 * (w * w).sum(), grad


def fit_logistic(
    matrix,
    labels: np.ndarray,
    C: float,
    class_weight: str | None = "balanced",
    max_iter: int = 100,
    tol: float = 1e-4,
    threads: int = 1,
    device: str | None = None,
) -> LogisticFit:
    """LogisticRegression(C, class_weight, max_iter, tol).fit(matrix, labels) with the
    loss/gradient over `threads` row shards, or solved by torch on `device` ("cuda":
    DeviceLoss, device_lbfgs).
    Binary labels fit one logit (HalfBinomialLoss), more fit the multinomial
    (HalfMultinomialLoss), as scikit-learn does."""
    if not C > 0:
        raise ValueError(f"C must be a positive number, got {C}")
    if max_iter < 0 or not tol >= 0:
        raise ValueError(f"max_iter and tol must be >= 0, got {max_iter} and {tol}")
    if sparse.issparse(matrix):
        matrix = matrix.tocsr()
    dtype = matrix.dtype if matrix.dtype in (np.float32, np.float64) else np.float64
    matrix = matrix.astype(dtype, copy=False)
    classes, y = np.unique(np.asarray(labels), return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"logistic regression needs 2+ classes, got {list(classes)}")
    weights = sample_weights(y, len(classes), class_weight, dtype)
    objective, w0 = logistic_objective(matrix, y, len(classes), weights, C, threads, device)
    solve = device_lbfgs if device is not None else lbfgs
    x, n_iter = solve(objective, w0, max_iter, tol)
    coef, intercept = unpack_weights(x, len(classes), matrix.shape[1])
    return LogisticFit(classes, coef, intercept, n_iter)


def logistic_objective(matrix, y, k: int, weights, C: float, threads: int, device):
    """(the penalised loss and its gradient as scipy calls it, the zero start): over row shards
    on the CPU, or on `device`. Binary labels fit one logit, more the multinomial."""
    from sklearn._loss.loss import HalfBinomialLoss, HalfMultinomialLoss
    from sklearn.linear_model._linear_loss import LinearModelLoss

    binary, dtype = k == 2, matrix.dtype
    # in the matrix's dtype, as scikit-learn starts it: scipy keeps a float32 start in float32
    w0 = np.zeros(matrix.shape[1] + 1 if binary else k * (matrix.shape[1] + 1), dtype=dtype)
    if device is not None:
        return DeviceLoss(matrix, y, weights, C, k, binary, device), w0.astype(np.float64)
    loss = LinearModelLoss(
        base_loss=HalfBinomialLoss() if binary else HalfMultinomialLoss(n_classes=k),
        fit_intercept=True,
    )
    target = (y == 1).astype(dtype) if binary else y.astype(dtype)
    return ShardedLoss(loss, matrix, target, weights, C, threads, binary), w0


def lbfgs(objective, w0: np.ndarray, max_iter: int, tol: float) -> tuple[np.ndarray, int]:
    """scipy's L-BFGS-B with scikit-learn's lbfgs settings: (the solution, its iterations); a
    warning where it stopped short."""
    with ThreadPoolExecutor(max(1, len(getattr(objective, "shards", ())))) as pool:
        result = optimize.minimize(
            objective,
            w0,
            args=(pool,),
            method="L-BFGS-B",
            jac=True,
            options={
                "maxiter": max_iter,
                "maxls": 50,
                "gtol": tol,
                "ftol": FTOL,
            },
        )
    if int(result.nit) >= max_iter or not result.success:
        log.warning("logistic regression: lbfgs stopped after %d iterations: %s", result.nit,
                    result.message)  # fmt: skip
    return result.x, int(result.nit)


def device_lbfgs(objective: DeviceLoss, w0: np.ndarray, max_iter: int, tol: float):
    """torch's L-BFGS (strong Wolfe line search) on the objective's device, with scikit-learn's
    stopping rule (every gradient component within `tol`, as scipy's `gtol`), history (10) and
    at most `max_iter` iterations: (the solution, its iterations); a warning where it stopped
    short. Its steps differ from scipy's L-BFGS-B, not the optimum it converges to."""
    torch = objective.torch
    x = torch.from_numpy(np.asarray(w0, dtype=np.float64)).to(objective.device)
    solver = torch.optim.LBFGS(
        [x], lr=1, max_iter=max_iter, max_eval=MAX_EVALS, tolerance_grad=tol,
        tolerance_change=FTOL, history_size=10, line_search_fn="strong_wolfe",
    )  # fmt: skip

    def closure():
        value, x.grad = objective(x)
        return value

    solver.step(closure)
    state = solver.state[x]
    n_iter, evals = int(state.get("n_iter", 0)), int(state["func_evals"])
    if n_iter >= max_iter or evals >= MAX_EVALS:
        log.warning("logistic regression: lbfgs on %s stopped after %d iterations (%d loss "
                    "evaluations)", objective.device, n_iter, evals)  # fmt: skip
    return x.cpu().numpy(), n_iter


def unpack_weights(x: np.ndarray, k: int, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """(coef (k or 1, n_features), intercept) from the flat vector L-BFGS optimised."""
    if k == 2:
        return np.asarray(x[None, :n_features]), np.asarray(x[-1:])
    full = x.reshape((k, -1), order="F")
    return np.asarray(full[:, :n_features]), np.asarray(full[:, -1])
