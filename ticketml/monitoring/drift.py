"""Drift statistics between a reference and a live sample (plain numpy; one function each)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

EPS = 1e-4


def psi(reference: Sequence[float], live: Sequence[float], bins: int = 10) -> float:
    """Population stability index over the reference's quantile bins (0: same; 0.1 moderate,
    0.25 large shift, by the usual reading)."""
    ref, cur = np.asarray(reference, dtype=float), np.asarray(live, dtype=float)
    if len(ref) == 0 or len(cur) == 0:
        return float("nan")
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    p = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=len(edges) + 1)
    q = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=len(edges) + 1)
    p = np.clip(p / p.sum(), EPS, None)
    q = np.clip(q / q.sum(), EPS, None)
    return float(np.sum((q - p) * np.log(q / p)))


def shares(values: Sequence[str], categories: Sequence[str] | None = None) -> dict[str, float]:
    values = [str(v) for v in values]
    cats = list(categories) if categories is not None else sorted(set(values))
    n = max(1, len(values))
    return {c: sum(v == c for v in values) / n for c in cats}


def js_distance(reference: Sequence[str], live: Sequence[str]) -> float:
    """Jensen-Shannon distance (base 2) of two categorical samples: 0 same mix, 1 disjoint."""
    cats = sorted(set(map(str, reference)) | set(map(str, live)))
    if not cats or len(reference) == 0 or len(live) == 0:
        return float("nan")
    p = np.array(list(shares(reference, cats).values()))
    q = np.array(list(shares(live, cats).values()))
    m = (p + q) / 2

    def kl(a, b):
        keep = a > 0
        return float(np.sum(a[keep] * np.log2(a[keep] / b[keep])))

    return float(np.sqrt(max(0.0, (kl(p, m) + kl(q, m)) / 2)))


def new_category_share(reference: Sequence[str], live: Sequence[str], rare: float = 0.01) -> float:
    """Share of live values whose category is under `rare` of the reference (e.g. a language
    the training set lacks)."""
    ref = shares(reference)
    if len(live) == 0:
        return float("nan")
    return float(np.mean([ref.get(str(v), 0.0) < rare for v in live]))


def domain_auc(reference: Sequence[str], live: Sequence[str], seed: int = 0, cap: int = 2000):
    """ROC AUC of a TF-IDF logistic regression telling live from reference texts, 5-fold
    cross-validated on a balanced sample (0.5: they look the same; 1: always told apart)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    rng = np.random.default_rng(seed)
    n = min(len(reference), len(live), cap)
    if n < 10:
        return float("nan")
    ref = [reference[i] for i in rng.choice(len(reference), n, replace=False)]
    cur = [live[i] for i in rng.choice(len(live), n, replace=False)]
    texts, y = ref + cur, np.r_[np.zeros(n), np.ones(n)]
    features = TfidfVectorizer(max_features=20000, sublinear_tf=True, ngram_range=(1, 2))
    x = features.fit_transform(texts)
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    proba = cross_val_predict(
        LogisticRegression(max_iter=1000), x, y, cv=folds, method="predict_proba"
    )[:, 1]
    return float(roc_auc_score(y, proba))
