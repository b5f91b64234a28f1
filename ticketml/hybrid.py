"""Hybrid model: per task, the calibrated transformer combined with the TF-IDF baseline.

How to combine them, fitted on the validation split (`model.combiner`):
  blend   w x transformer + (1 - w) x baseline, w on a 0..1 grid (one parameter): the default,
          ahead of the others over 22 GPU splits of three datasets (README "Real tickets");
          where validation holds texts in more than one script (pyfunc.text.script), each script
          with MIN_SCRIPT_ROWS labelled rows gets its own w when that wins 5-fold CV on val
          ("by_script": an English encoder's weight on Russian text is not its weight on English)
  stack   a class-balanced multinomial logistic regression on both models' log-probabilities
          (2k inputs; C chosen from STACK_C by 5-fold cross-validation on val)
  product softmax(w x log transformer + (1 - w) x log baseline), w on the grid: what a transformer
          trained inside that product (train.baseline_product) is served as, whatever
          model.combiner says (combiner_for)
  pool    softmax(a x log transformer + b x log baseline), a and b >= 0 fitted by NLL on val (a
          log-linear pool: the product with a sharpness of its own; offline on the shipped GPU
          runs ahead of the blend on Jira, bench/combiners_offline.py); by script as the blend
          is, each script's a and b its own
  cv      per task, blend or stack, whichever has the better 5-fold cross-validated macro-F1 on
          val (ties: blend)
  auto    the default: the pool for a transformer with its token layer (model.lexical, what a
          GPU trains: ahead of the blend or level on all six task-datasets of round 36), the
          blend for one without (the CPU's: on the demo model the pool lost the Russian rows'
          topic and 0.006 of priority macro-F1, where the blend matches the baseline)
The baseline is served from its own plain-array file (`baseline.npz`, pyfunc/tfidf.py); the
choice, its parameters and the hybrid's own calibration map are `hybrid.json`
(pyfunc.core.hybrid_proba serves it); serving needs neither torch nor scikit-learn.
"""

from __future__ import annotations

import numpy as np

from ticketml import TASKS
from ticketml.data.schema import UNLABELLED, fold_splits, labelled_rows
from ticketml.errors import ConfigError
from ticketml.metrics import fast_macro_f1

WEIGHTS = np.round(np.linspace(0, 1, 21), 2)
STACK_C = (0.01, 0.1, 1.0)
COMBINERS = ("auto", "blend", "stack", "product", "pool", "cv")
FOLDS = 5
MIN_SCRIPT_ROWS = 50  # labelled validation rows a script needs for a blend weight of its own
ABSENT_LOGIT = -1e4  # a class absent from the stacker's training rows (JSON has no -inf)


def macro_f1(labels: np.ndarray, probs: np.ndarray) -> float:
    return fast_macro_f1(labels, probs.argmax(1), probs.shape[1])


def blend_weight(
    transformer: np.ndarray, baseline: np.ndarray, labels: np.ndarray, method: str = "blend"
) -> dict:
    """The transformer weight in [0, 1] of a blend (or a product: pyfunc.core.combine) with the
    best macro-F1 on these rows (ties → 0.5)."""
    from pyfunc.core import combine

    scores = [
        macro_f1(
            labels, combine({"method": method, "transformer_weight": w}, transformer, baseline)
        )
        for w in WEIGHTS
    ]
    return {
        "method": method,
        "transformer_weight": best_weight(WEIGHTS, scores),
        "val_macro_f1": float(max(scores)),
    }


def best_weight(grid, scores: list[float]) -> float:
    """The weight of `grid` with the best score; of tied ones, the nearest 0.5 (an even mix)."""
    ties = [w for w, s in zip(grid, scores, strict=True) if s >= max(scores) - 1e-12]
    return float(min(ties, key=lambda v: abs(v - 0.5)))


def combiner_for(combiner: str, baseline_product: bool, lexical: bool) -> str:
    """The combination a hybrid is fitted as: "product" for a transformer trained inside a
    product with the baseline (train.baseline_product; alone it is half a model); for
    model.combiner=auto the pool where the transformer has its token layer (`lexical`), the
    blend where not; else model.combiner."""
    if baseline_product:
        return "product"
    if combiner == "auto":
        return "pool" if lexical else "blend"
    return combiner


def fit_stacker(
    transformer: np.ndarray,
    baseline: np.ndarray,
    labels: np.ndarray,
    C: float,
    class_weight: str | None = "balanced",
) -> dict:
    """A class-balanced logistic regression on pyfunc.core.stack_features, as hybrid.json holds
    it: coef (2k, k) and intercept (k) in label order (`class_weight=None`: unweighted, what
    bench/combiners_offline.py compares it with)."""
    from pyfunc.core import stack_features
    from ticketml.baseline import class_columns
    from ticketml.logistic import fit_logistic

    features = stack_features(transformer, baseline)
    k = transformer.shape[1]
    fit = fit_logistic(features, labels, C, class_weight, max_iter=2000)
    coef, intercept = class_columns(fit, list(range(k)), features.shape[1])
    intercept = np.where(np.isfinite(intercept), intercept, ABSENT_LOGIT)
    return {
        "method": "stack",
        "C": float(C),
        "coef": np.round(coef, 6).tolist(),
        "intercept": np.round(intercept, 6).tolist(),
    }


def fit_pool(
    transformer: np.ndarray,
    baseline: np.ndarray,
    labels: np.ndarray,
    neighbours: np.ndarray | None = None,
) -> dict:
    """The log-linear pool's weights (a, b >= 0) of softmax(a x log transformer + b x log
    baseline) with the least NLL on these rows (pyfunc.core.combine serves it); with
    `neighbours` (the training tickets' votes on these rows) a third weight, theirs."""
    from scipy.optimize import minimize

    from pyfunc.probability import log_probs
    from ticketml.calibration import softmax_nll

    parts = [log_probs(transformer), log_probs(baseline)]
    if neighbours is not None:
        parts.append(log_probs(neighbours))

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        value, g = softmax_nll(sum(x * p for x, p in zip(w, parts, strict=True)), labels)
        return value, np.array([(g * p).sum() for p in parts]) / len(labels)

    start = np.full(len(parts), 0.5)
    fit = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=[(0, 50)] * len(parts))
    entry = {
        "method": "pool",
        "transformer_weight": round(float(fit.x[0]), 6),
        "baseline_weight": round(float(fit.x[1]), 6),
        "val_nll": float(fit.fun),
    }
    if neighbours is not None:
        entry["neighbour_weight"] = round(float(fit.x[2]), 6)
    return entry


def build_neighbours(features, train, label_maps: dict):
    """The training tickets' index (pyfunc.neighbours) over `features`' word block (the
    baseline's fitted TfidfFeatures) of `train`'s texts as the baseline was fitted on them."""
    from pyfunc.neighbours import Neighbours
    from ticketml.data.schema import encode_labels

    return Neighbours.build(
        features.word_block(train["text"].tolist()),
        len(features.word_vocab),
        encode_labels(train, label_maps),
        {t: len(label_maps[t]) for t in TASKS},
    )


def search_split(index, features, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The training tickets' index (build_neighbours) searched for a whole split's `texts`
    (as the baseline saw them), with `features`' word block, on the process's cores."""
    from ticketml.baseline import cpu_count

    return index.search(features.word_block(list(texts)), len(texts), workers=cpu_count())


# the (k, temperature) pairs of the training tickets' vote a pool tries on val (least NLL wins)
NEIGHBOUR_GRID = tuple((k, t) for k in (5, 10, 30) for t in (0.02, 0.05, 0.1))


def with_neighbours(
    entry: dict, transformer, baseline, labels, votes, folds: int = 0, seed: int = 0
) -> tuple[dict, np.ndarray]:
    """A pool entry with the training tickets' votes as a third expert where they help on these
    rows: each (k, temperature) of NEIGHBOUR_GRID fitted (`votes(k, t)`: their probabilities on
    these rows), the least NLL kept, and with `folds` kept only where it also wins out-of-fold
    macro-F1 against the pool without them (NLL alone took them where they cost macro-F1: the
    outside sample's topic); `entry` as it was otherwise. Returns the entry and the votes it
    weighs (None without)."""
    best, best_votes = entry, None
    for k, temperature in NEIGHBOUR_GRID:
        nb = votes(k, temperature)
        fit = fit_pool(transformer, baseline, labels, nb)
        if fit["neighbour_weight"] > 0 and fit["val_nll"] < best["val_nll"]:
            best = fit | {"neighbours": {"k": k, "temperature": temperature}}
            best_votes = nb
    if best_votes is None or not folds:
        return best, best_votes
    without = out_of_fold(["pool"], transformer, baseline, labels, folds, seed)["pool"]
    oof = out_of_fold(["pool"], transformer, baseline, labels, folds, seed, best_votes)["pool"]
    if macro_f1(labels, oof) <= macro_f1(labels, without):
        return entry, None
    return best, best_votes


WEIGHTED = ("blend", "pool")  # the combinations that can weigh their halves per script


def weights_of(entry: dict) -> float | list[float]:
    """What a script's entry in "by_script" holds: a blend's transformer weight, a pool's
    [transformer weight, baseline weight] (pyfunc.core.combine reads both)."""
    if entry["method"] == "pool":
        return [entry["transformer_weight"], entry["baseline_weight"]]
    return entry["transformer_weight"]


def script_weights(
    transformer, baseline, labels, scripts: np.ndarray, one: dict, min_rows: int
) -> dict[str, float | list[float]]:
    """The weights of `one`'s method (blend or pool) fitted per script with `min_rows` labelled
    rows here, where they differ from `one`'s, fitted on all rows."""
    out = {}
    for name in np.unique(scripts):
        rows = scripts == name
        if rows.sum() >= min_rows:
            fit = fit_candidate(one["method"], transformer[rows], baseline[rows], labels[rows])
            if weights_of(fit) != weights_of(one):
                out[str(name)] = weights_of(fit)
    return out


def fit_by_script(
    transformer, baseline, labels, scripts, one: dict, folds: int, seed: int = 0
) -> dict[str, float | list[float]]:
    """A blend's or a pool's "by_script" weights (script_weights on every row, against `one`,
    fitted on them all), kept only when weighing per script beats `one` in out-of-fold macro-F1
    on these rows; {} otherwise, and where the rows are all in one script."""
    from pyfunc.core import combine

    scripts = np.asarray(scripts)
    if len(np.unique(scripts)) < 2:
        return {}
    oof = {"one": np.zeros_like(transformer), "by_script": np.zeros_like(transformer)}
    fold_min = max(1, MIN_SCRIPT_ROWS * (folds - 1) // folds)
    for train, held in fold_splits(labels, folds, seed):
        fold_one = fit_candidate(one["method"], transformer[train], baseline[train], labels[train])
        by = script_weights(
            transformer[train], baseline[train], labels[train], scripts[train], fold_one, fold_min
        )
        oof["one"][held] = combine(fold_one, transformer[held], baseline[held])
        entry = {**fold_one, "by_script": by}
        oof["by_script"][held] = combine(entry, transformer[held], baseline[held], scripts[held])
    if macro_f1(labels, oof["by_script"]) <= macro_f1(labels, oof["one"]):
        return {}
    return script_weights(transformer, baseline, labels, scripts, one, MIN_SCRIPT_ROWS)


def fit_candidate(name: str, transformer, baseline, labels, neighbours=None) -> dict:
    """One candidate fitted on these rows (`neighbours`: the votes a pool weighs, fit_pool)."""
    if name in ("blend", "product"):
        return blend_weight(transformer, baseline, labels, name)
    if name == "pool":
        return fit_pool(transformer, baseline, labels, neighbours)
    return fit_stacker(transformer, baseline, labels, float(name.removeprefix("stack C=")))


def candidate_names(combiner: str) -> list[str]:
    """The candidates fit_task chooses between for a combiner (auto resolved: combiner_for)."""
    if combiner not in COMBINERS:
        raise ConfigError(f"model.combiner={combiner!r} must be one of {', '.join(COMBINERS)}")
    if combiner == "auto":
        raise ValueError("model.combiner=auto is resolved by hybrid.combiner_for first")
    stacks = [f"stack C={c}" for c in STACK_C]
    return {
        "cv": ["blend", *stacks],
        "blend": ["blend"],
        "stack": stacks,
        "product": ["product"],
        "pool": ["pool"],
    }[combiner]


def n_folds(labels: np.ndarray, folds: int = FOLDS) -> int:
    """FOLDS, or fewer when the commonest class has fewer rows (at least 2). A class rarer than
    that is spread over as many folds as it has rows."""
    return int(min(folds, max(2, np.bincount(labels).max())))


def out_of_fold(
    names: list[str], transformer, baseline, labels, folds: int, seed: int = 0, neighbours=None
) -> dict[str, np.ndarray]:
    """Each candidate's probabilities on every row, fitted on the other folds (what choosing
    between them and calibrating the stacker read: never a row's own fit); `neighbours`: the
    training tickets' votes on every row, which a pool then weighs (with_neighbours)."""
    from pyfunc.core import combine

    n, k = transformer.shape
    out = {name: np.zeros((n, k)) for name in names}
    for train, held in fold_splits(labels, folds, seed):
        nb = (None, None) if neighbours is None else (neighbours[train], neighbours[held])
        for name in names:
            entry = fit_candidate(name, transformer[train], baseline[train], labels[train], nb[0])
            out[name][held] = combine(entry, transformer[held], baseline[held], neighbours=nb[1])
    return out


def fit_task(
    transformer,
    baseline,
    labels,
    combiner: str = "blend",
    seed: int = 0,
    scripts=None,
    votes=None,
) -> dict:
    """One task's hybrid.json entry: the candidate with the best out-of-fold macro-F1 on the
    validation rows labelled for the task (the blend on ties), refitted on them all (a blend
    or a pool with its per-script weights where they win: fit_by_script; `scripts` are the rows'
    pyfunc.text.script, None: one weight), with the hybrid's calibration map (temperature,
    + class bias where it wins in cross-validation: see fit_calibration) fitted on the
    out-of-fold probabilities for a stacker (its in-sample ones are optimistic) and on the blend
    itself for the blend. `votes(k, temperature)`: the training tickets' votes on every
    validation row (pyfunc.neighbours), which a pool weighs where they lower its NLL and win
    out-of-fold macro-F1 (with_neighbours; then one weight for every script)."""
    from pyfunc.core import combine
    from pyfunc.probability import log_probs
    from ticketml.calibration import fit_calibration

    if scripts is None:
        scripts = ["latin"] * len(labels)
    keep = np.asarray(labels) != UNLABELLED  # the rows labelled_rows keeps
    labels, transformer, baseline, scripts = labelled_rows(labels, transformer, baseline, scripts)
    names = candidate_names(combiner)
    folds = n_folds(labels)
    oof = out_of_fold(names, transformer, baseline, labels, folds, seed) if len(names) > 1 else {}
    cv = {name: macro_f1(labels, p) for name, p in oof.items()}
    chosen = max(names, key=lambda n: (cv.get(n, 0.0), n == "blend"))
    entry = fit_candidate(chosen, transformer, baseline, labels)
    # a stacker always has out-of-fold scores (it is chosen among three Cs)
    stacked = entry["method"] == "stack"
    nb = None
    if entry["method"] == "pool" and votes is not None:
        entry, nb = with_neighbours(
            entry, transformer, baseline, labels, lambda k, t: votes(k, t)[keep], folds, seed
        )
    if (
        entry["method"] in WEIGHTED
        and nb is None
        and (by := fit_by_script(transformer, baseline, labels, scripts, entry, folds, seed))
    ):
        entry["by_script"] = by
    calibrate_on = oof[chosen] if stacked else combine(entry, transformer, baseline, scripts, nb)
    entry.update(fit_calibration(log_probs(calibrate_on), labels))
    entry["chosen_by"] = {"cv_macro_f1": cv, "folds": folds, "combiner": combiner}
    return entry


def fit_hybrid(
    transformer: dict[str, np.ndarray],
    baseline: dict[str, np.ndarray],
    labels: dict[str, np.ndarray],
    combiner: str = "blend",
    seed: int = 0,
    scripts=None,
    neighbours=None,
) -> dict:
    """hybrid.json: per task, `fit_task`. `transformer` is the tempered transformer
    (softmax(z / T)) on the validation split, `baseline` the baseline's probabilities there,
    `scripts` the validation texts' pyfunc.text.script (None: one blend weight per task);
    `neighbours`: (pyfunc.neighbours.Neighbours, its search result for the validation rows),
    the training tickets whose votes a pool may weigh (None: none)."""

    def votes(task: str):
        if neighbours is None:
            return None
        index, found = neighbours
        return lambda k, t: index.votes(found, task, k, t)

    return {
        t: fit_task(transformer[t], baseline[t], labels[t], combiner, seed, scripts, votes(t))
        for t in TASKS
    }
