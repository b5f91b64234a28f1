"""Calibration maps (temperature, + per-class bias, + a floor of label noise; fitted on validation), ECE/NLL, and routing
coverage. The maps are applied by the serving core (pyfunc.probability.scaled)."""

from __future__ import annotations

import numpy as np

from pyfunc.probability import decide, scaled, softmax
from ticketml.data.schema import labelled_rows

THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    labels, probs = labelled_rows(labels, probs)
    return float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None)).mean())


def softmax_nll(scores: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean NLL of softmax(scores) at `labels` and its gradient per score (softmax minus the
    one-hot label, row by row): what fit_scaling and the hybrid's pool (ticketml.hybrid.fit_pool)
    minimise, each through its own parameters."""
    s = scores - scores.max(axis=1, keepdims=True)
    lse = np.log(np.exp(s).sum(axis=1))
    rows = np.arange(len(labels))
    residual = np.exp(s - lse[:, None])
    residual[rows, labels] -= 1
    return float((lse - s[rows, labels]).mean()), residual


def reliability_bins(
    probs: np.ndarray, labels: np.ndarray, bins: int = 15
) -> list[tuple[float, float, float]]:
    """Per non-empty equal-width bin of top-class confidence: (share of rows, mean confidence,
    accuracy), on the rows labelled for the task. ECE and the reliability diagram read these."""
    labels, probs = labelled_rows(labels, probs)
    conf, correct = probs.max(axis=1), probs.argmax(axis=1) == labels
    edges = np.linspace(0, 1, bins + 1)
    out = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        in_bin = (conf > lo) & (conf <= hi)
        if in_bin.any():
            out.append(
                (float(in_bin.mean()), float(conf[in_bin].mean()), float(correct[in_bin].mean()))
            )
    return out


def ece(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error of the top-class confidence, equal-width bins (labelled rows)."""
    return float(
        sum(share * abs(acc - conf) for share, conf, acc in reliability_bins(probs, labels, bins))
    )


def ece_noise(probs: np.ndarray, draws: int = 200, seed: int = 0, bins: int = 15) -> dict:
    """The ECE a perfectly calibrated model with these probabilities scores on this many rows:
    labels drawn from each row's own distribution, `draws` times (mean and 95th percentile).
    An ECE within it is sampling noise of the test set, not miscalibration."""
    probs = np.asarray(probs, dtype=np.float64)
    rng = np.random.default_rng(seed)
    edges = np.cumsum(probs, axis=1)
    values = [
        ece(
            probs,
            np.minimum((rng.random((len(probs), 1)) > edges).sum(1), probs.shape[1] - 1),
            bins,
        )
        for _ in range(draws)
    ]
    return {"mean": float(np.mean(values)), "p95": float(np.percentile(values, 95))}


def fit_temperature(
    logits: np.ndarray, labels: np.ndarray, low: float = 0.05, high: float = 20.0
) -> float:
    """argmin_T NLL(softmax(logits / T)) by golden-section search on log T (NLL is unimodal in T):
    one new NLL per step (the other inner point is the last step's), 60 steps (the bracket
    shrinks to 1e-12 of its width)."""
    labels, logits = labelled_rows(labels, logits)

    def cost(log_t: float) -> float:
        return nll(softmax(logits, np.exp(log_t)), labels)

    a, b = np.log(low), np.log(high)
    ratio = (np.sqrt(5) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = cost(c), cost(d)
    for _ in range(60):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = cost(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = cost(d)
    return float(np.exp((a + b) / 2))


def fit_scaling(logits: np.ndarray, labels: np.ndarray, l2: float = 1e-3) -> dict:
    """argmin over (T, b) of NLL(softmax(logits / T + b)) on validation rows: "bias-corrected
    temperature scaling". The NLL is convex in (1/T, b); L-BFGS from the best temperature alone.
    The bias (mean zero, lightly L2-regularised so a class missing from validation stays finite)
    undoes the prior shift of a class-weighted loss, which one temperature cannot."""
    from scipy.optimize import minimize

    z = np.asarray(logits, dtype=np.float64)
    n, k = z.shape

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        a, b = params[0], params[1:]
        value, g = softmax_nll(a * z + b, labels)
        value += l2 * float(b @ b)
        return value, np.concatenate([[(g * z).sum() / n], g.mean(axis=0) + 2 * l2 * b])

    start = np.concatenate([[1 / fit_temperature(z, labels)], np.zeros(k)])
    bounds = [(1 / 20.0, 1 / 0.05)] + [(None, None)] * k
    result = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds)
    a, b = float(result.x[0]), result.x[1:] - result.x[1:].mean()
    return {"temperature": 1 / a, "bias": [round(float(v), 6) for v in b]}


def fit_floor(logits: np.ndarray, labels: np.ndarray, start: dict) -> dict:
    """`start` (a temperature, with or without a class bias) plus a floor f in [0, 0.5]:
    argmin over (T, f) of NLL((1 - f) x softmax(logits / T + b) + f / k), the bias kept. What a
    temperature cannot do where some labels are noise: stay sharp on the rows the model gets
    right and still not claim more than 1 - f + f / k."""
    from scipy.optimize import minimize

    z = np.asarray(logits, dtype=np.float64)

    def loss(params: np.ndarray) -> float:
        entry = {**start, "temperature": float(np.exp(params[0])), "floor": float(params[1])}
        return nll(scaled(z, entry), labels)

    first = [np.log(float(start["temperature"])), 0.01]
    bounds = [(np.log(0.05), np.log(20.0)), (0.0, 0.5)]
    result = minimize(loss, first, method="L-BFGS-B", bounds=bounds)
    return {
        **start,
        "temperature": float(np.exp(result.x[0])),
        "floor": round(float(result.x[1]), 6),
    }


# the calibration maps fit_calibration chooses between, simplest first (it wins ties); "identity"
# (no map: temperature 1) is the simplest: on a few hundred validation rows a fitted map can follow
# their noise (round 27's saved probabilities: the hybrid's priority ECE on one outside-sample
# split 0.061 with a temperature, 0.044 without)
MAPS = (
    "identity",
    "temperature",
    "temperature_bias",
    "temperature_floor",
    "temperature_bias_floor",
)


def fit_maps(logits: np.ndarray, labels: np.ndarray) -> dict[str, dict]:
    """Each of MAPS fitted on these rows: none (the identity), the temperature and the
    temperature + bias once each, and a floor on top of each of them."""
    temperature = {"temperature": fit_temperature(logits, labels)}
    bias = fit_scaling(logits, labels)
    return {
        "identity": {"temperature": 1.0},
        "temperature": temperature,
        "temperature_bias": bias,
        "temperature_floor": fit_floor(logits, labels, temperature),
        "temperature_bias_floor": fit_floor(logits, labels, bias),
    }


def fit_calibration(logits: np.ndarray, labels: np.ndarray, folds: int = 5, seed: int = 0) -> dict:
    """The calibration map shipped for one task: of MAPS (none; a temperature; + a class bias,
    `fit_scaling`; + a floor of label noise, `fit_floor`), the one with the lowest held-out NLL
    over `folds` folds of the validation rows, the simpler on ties (a bias has k more
    parameters, a floor one: on a small or clean validation split they can fit noise). Refitted
    on all validation rows; "selected_by" records each map's cross-validated NLL. Too few rows to
    cross-validate: the temperature alone. Rows without a label for the task are left out."""
    labels, logits = labelled_rows(labels, logits)
    n = len(labels)
    order = np.random.default_rng(seed).permutation(n)
    cv = {name: [] for name in MAPS}
    for fold in np.array_split(order, folds) if n >= 10 * folds else []:
        train = np.setdiff1d(order, fold)
        for name, entry in fit_maps(logits[train], labels[train]).items():
            cv[name].append(nll(scaled(logits[fold], entry), labels[fold]) * len(fold))
    scores = {k: float(sum(v) / n) for k, v in cv.items() if v}
    # the simplest map within 1e-4 nats of the best (dict order: simplest first)
    best = min(scores.values()) if scores else 0.0
    name = next((k for k, v in scores.items() if v <= best + 1e-4), "temperature")
    chosen = (
        fit_maps(logits, labels)[name]
        if scores
        else {"temperature": fit_temperature(logits, labels)}
    )
    return {**chosen, "selected_by": {"cv_nll": scores, "folds": folds if scores else 0}}


def calibration_report(probs_before: np.ndarray, scaling: dict, logits: np.ndarray, labels):
    """ECE/NLL before and after a map, and macro-F1 of the decisions (unchanged by design)."""
    from sklearn.metrics import f1_score

    labels, probs_before, logits = labelled_rows(labels, probs_before, logits)
    after = scaled(logits, scaling)
    k = after.shape[1]

    def f1(pred):
        return float(
            f1_score(labels, pred, labels=list(range(k)), average="macro", zero_division=0)
        )

    return {
        "ece_uncalibrated": ece(probs_before, labels),
        "ece": ece(after, labels),
        "nll_uncalibrated": nll(probs_before, labels),
        "nll": nll(after, labels),
        "macro_f1_uncalibrated": f1(probs_before.argmax(1)),
        "macro_f1_calibrated": f1(decide(after, scaling)),
    }


def calibrate(
    val_logits: np.ndarray, val_labels: np.ndarray, test_logits: np.ndarray, test_labels: np.ndarray
) -> dict:
    """The map fitted on val (`fit_calibration`); ECE, NLL and macro-F1 on test before and after."""
    scaling = fit_calibration(val_logits, val_labels)
    return {
        "scaling": scaling,
        **calibration_report(softmax(test_logits), scaling, test_logits, test_labels),
    }


def routing_table(
    probs: np.ndarray, labels: np.ndarray, pred: np.ndarray | None = None, thresholds=THRESHOLDS
) -> list[dict]:
    """For each threshold: share of tickets auto-routed (the given label's probability ≥ t, as
    `needs_review` decides) and their accuracy. `pred`: the labels given (default argmax)."""
    pred = probs.argmax(axis=1) if pred is None else pred
    labels, probs, pred = labelled_rows(labels, probs, pred)
    conf, correct = probs[np.arange(len(pred)), pred], pred == labels
    rows = []
    for t in thresholds:
        routed = conf >= t
        rows.append(
            {
                "threshold": t,
                "coverage": float(routed.mean()),
                "accuracy": float(correct[routed].mean()) if routed.any() else None,
            }
        )
    return rows
