"""baseline: TF-IDF (word + char n-grams, shared by the tasks) + LogisticRegression per task.

The features are fitted by pyfunc.tfidf's numpy implementation (scikit-learn's TfidfVectorizer
semantics, checked against it on every save); ticketml.logistic fits the logistic regressions
(scikit-learn's lbfgs objective, on every core). The
model is saved as `artifacts/baseline.npz`: plain arrays, no pickle, linear in the vocabulary,
and the very file the hybrid model serves.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf
from scipy import sparse

from pyfunc.tfidf import CharKeys, TfidfClassifier, TfidfFeatures, tfidf_values, word_ngrams
from ticketml import TASKS
from ticketml.contract import BASELINE, artifact, load_label_maps, load_splits
from ticketml.data.schema import MISSING, encode_labels, fold_splits
from ticketml.errors import ModelError
from ticketml.io import atomic_path, write_json
from ticketml.logistic import LogisticFit, fit_logistic
from ticketml.metrics import evaluate_probs, flat_metrics, summary_line
from ticketml.plots import confusion_plots

log = logging.getLogger(__name__)
CHUNK_DOCS = 2000  # char n-grams are counted this many texts at a time (bounded memory)
PARITY_ROWS = 200
PARALLEL_NNZ = 5_000_000  # below it, the heads fit one after the other


def cpu_count() -> int:
    """The cores the fit may use: joblib's count (the process's CPU affinity and quota, and
    LOKY_MAX_CPU_COUNT when set, e.g. for several fits sharing a machine)."""
    from joblib import cpu_count as joblib_cpu_count

    return max(1, int(joblib_cpu_count()))


def predict_proba_parallel(model: TfidfClassifier, texts: list[str]) -> dict[str, np.ndarray]:
    """`model.predict_proba(texts)` in chunks of CHUNK_DOCS on every core (loky processes: the
    n-gram counting is Python that holds the GIL); the same numbers, each row being scored on
    its own. For whole splits in the pipeline (baseline, export, evaluate); serving scores a
    request in-process."""
    from joblib import Parallel, delayed

    chunks = [texts[i : i + CHUNK_DOCS] for i in range(0, len(texts), CHUNK_DOCS)]
    jobs = min(len(chunks), cpu_count())
    if jobs < 2:
        return model.predict_proba(texts)
    parts = Parallel(n_jobs=jobs, backend="loky")(
        delayed(model.predict_proba)(chunk) for chunk in chunks
    )
    return {t: np.concatenate([p[t] for p in parts]) for t in parts[0]}


def tfidf_scorer(model: TfidfClassifier, path: str | Path, artifacts_dir: str | Path):
    """`predict_proba_parallel(model, texts)` through a store keyed by the bytes of the file the
    model was saved as (ticketml.scores, `tfidf-<digest>`): the baseline stage stores val and
    test, export_onnx (hybrid weights), evaluate and promote read them back. The function's
    `store` says how many were read back."""
    from ticketml import scores

    store = scores.LogitStore(
        artifacts_dir, name=scores.TFIDF + scores.file_digest(path), dtype=np.float64
    )
    widths = {t: len(model.labels[t]) for t in TASKS}

    def score(texts) -> dict[str, np.ndarray]:
        texts = list(texts)
        found, out = store.get(texts, widths)
        todo = np.flatnonzero(~found)
        if len(todo):
            fresh = predict_proba_parallel(model, [texts[i] for i in todo])
            for t in TASKS:
                out[t][todo] = fresh[t]
            store.put([texts[i] for i in todo], fresh)
        return out

    score.store = store
    return score


def attach_stores(classifier, artifacts_dir: str | Path):
    """Give `classifier` the stores under `artifacts_dir` (what evaluate and promote read back):
    its graph's logits (ticketml.scores.attach) and, in a hybrid, its baseline's probabilities
    (tfidf_scorer). Returns the graph's store."""
    from ticketml import scores

    store = scores.attach(classifier, artifacts_dir)
    if classifier.tfidf is not None:
        classifier.tfidf_proba = tfidf_scorer(
            classifier.tfidf, classifier.bundle.path("baseline"), artifacts_dir
        )
    return store


def baseline_path(cfg: DictConfig) -> Path:
    return artifact(cfg, BASELINE)


def select_terms(
    terms: np.ndarray, counts: np.ndarray, n_terms: int, min_df: int, max_features: int | None
) -> np.ndarray:
    """Term ids kept, ascending, from one (term, count) per distinct (document, term) pair, as
    scikit-learn's CountVectorizer keeps them: document frequency ≥ min_df, then the
    max_features most frequent in the corpus (ties: the alphabetically first, term ids being in
    alphabetical order)."""
    df = np.bincount(terms, minlength=n_terms)
    candidates = np.flatnonzero(df >= min_df)
    if max_features and len(candidates) > max_features:
        total = np.bincount(terms, weights=counts, minlength=n_terms)[candidates]
        candidates = np.sort(candidates[np.argsort(-total, kind="stable")[:max_features]])
    if not len(candidates):
        raise ModelError(f"no n-gram occurs in {min_df}+ training texts: lower the baseline min_df")
    return candidates


def smooth_idf(df: np.ndarray, n_docs: int) -> np.ndarray:
    return np.log((1 + n_docs) / (1 + df)) + 1.0


def fit_block(
    docs: np.ndarray,
    terms: np.ndarray,
    counts: np.ndarray,
    n_terms: int,
    n_docs: int,
    min_df: int,
    max_features: int | None,
) -> tuple[np.ndarray, np.ndarray, tuple]:
    """(kept term ids, idf, (rows, cols, values) of the training block) from distinct
    (doc, term) pairs and their counts, docs ascending."""
    kept = select_terms(terms, counts, n_terms, min_df, max_features)
    new_id = np.full(n_terms, -1, dtype=np.int64)
    new_id[kept] = np.arange(len(kept))
    cols = new_id[terms]
    keep = cols >= 0
    idf = smooth_idf(np.bincount(cols[keep], minlength=len(kept)), n_docs)
    return kept, idf, tfidf_values(docs[keep], cols[keep], n_docs, idf, True, counts[keep])


def chunk_pairs(texts: list[str], start: int, chars: CharKeys, word_max: int) -> tuple:
    """Distinct (doc, term) pairs and counts of one chunk of texts, docs numbered from `start`:
    (word terms, (docs, local term ids, counts)) and (docs, char keys, counts)."""
    index: dict[str, int] = {}
    docs: list[int] = []
    terms: list[int] = []
    for i, text in enumerate(texts):
        ids = [index.setdefault(g, len(index)) for g in word_ngrams(text.lower(), 1, word_max)]
        terms.extend(ids)
        docs.extend([i] * len(ids))
    width = max(len(index), 1)
    pairs, counts = np.unique(
        np.asarray(docs, dtype=np.int64) * width + np.asarray(terms, dtype=np.int64),
        return_counts=True,
    )
    words = (list(index), (pairs // width + start, pairs % width, counts))
    doc, key = chars.keys(texts)
    local = np.unique(key)  # sort + search: cheaper than unique's return_inverse (argsort)
    width = max(len(local), 1)
    pairs, counts = np.unique(doc * width + np.searchsorted(local, key), return_counts=True)
    return words, (pairs // width + start, local[pairs % width], counts)


def corpus_pairs(texts: list[str], chars: CharKeys, word_max: int) -> tuple:
    """The pairs of every chunk of CHUNK_DOCS texts (on every core when there are several
    chunks), merged: ((word vocabulary, alphabetical), (docs, terms, counts)) and ((char keys,
    ascending), (docs, terms, counts)); term ids index the vocabularies, docs ascend."""
    from joblib import Parallel, delayed

    starts = range(0, len(texts), CHUNK_DOCS)
    jobs = min(len(starts), cpu_count())
    chunks = Parallel(n_jobs=jobs, backend="loky" if jobs > 1 else "sequential")(
        delayed(chunk_pairs)(texts[s : s + CHUNK_DOCS], s, chars, word_max) for s in starts
    )
    names = sorted({n for (chunk_names, _), _ in chunks for n in chunk_names})
    rank = {n: i for i, n in enumerate(names)}
    w_docs, w_terms, w_counts, c_docs, c_keys, c_counts = [], [], [], [], [], []
    for (chunk_names, (docs, terms, counts)), (cdocs, ckeys, ccounts) in chunks:
        to_global = np.fromiter(map(rank.__getitem__, chunk_names), np.int64, len(chunk_names))
        w_docs.append(docs)
        w_terms.append(to_global[terms] if len(terms) else terms)
        w_counts.append(counts)
        c_docs.append(cdocs)
        c_keys.append(ckeys)
        c_counts.append(ccounts)
    keys = np.concatenate(c_keys)
    vocab = np.unique(keys)
    return (
        (names, (np.concatenate(w_docs), np.concatenate(w_terms), np.concatenate(w_counts))),
        (vocab, (np.concatenate(c_docs), np.searchsorted(vocab, keys), np.concatenate(c_counts))),
    )


def fit_features(texts: list[str], b: DictConfig) -> tuple[TfidfFeatures, sparse.csr_matrix]:
    """The shared transform (vocabularies + idf) and the training matrix, in one pass over the
    text: what scikit-learn's FeatureUnion of two TfidfVectorizers gives, without its Python
    loop per character."""
    n, limit = len(texts), int(b.max_features) or None
    chars = CharKeys.for_texts(texts, int(b.char_ngram_min), int(b.char_ngram_max))
    words, char_pairs = corpus_pairs(texts, chars, int(b.word_ngram_max))
    names, (w_docs, w_terms, w_counts) = words
    w_kept, w_idf, (w_rows, w_cols, w_vals) = fit_block(
        w_docs, w_terms, w_counts, len(names), n, int(b.word_min_df), limit
    )
    keys, (c_docs, c_terms, c_counts) = char_pairs
    c_kept, c_idf, (c_rows, c_cols, c_vals) = fit_block(
        c_docs, c_terms, c_counts, len(keys), n, int(b.char_min_df), limit
    )
    features = TfidfFeatures(
        [names[i] for i in w_kept], w_idf, (1, int(b.word_ngram_max)), chars, keys[c_kept], c_idf
    )
    matrix = sparse.csr_matrix(
        (
            np.concatenate([w_vals, c_vals]).astype(np.float32),
            (np.concatenate([w_rows, c_rows]), np.concatenate([w_cols, c_cols + len(w_kept)])),
        ),
        shape=(n, features.n_features),
    )
    return features, matrix


def csr(blocks: list[tuple], n_docs: int, n_features: int) -> sparse.csr_matrix:
    rows, cols, values = (np.concatenate(parts) for parts in zip(*blocks, strict=True))
    return sparse.csr_matrix((values, (rows, cols)), shape=(n_docs, n_features))


def class_columns(fit: LogisticFit, order: list, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """A fitted logistic regression as (coef (n_features, classes), intercept) in `order`: a
    binary model's one decision column z becomes the softmax pair (0, z); a class absent from
    its training rows gets an intercept of -inf (probability 0)."""
    classes = list(fit.classes)
    coef, intercept = fit.coef.astype(np.float64), fit.intercept.astype(np.float64)
    if len(classes) == 2:
        coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.array([0.0, intercept[0]])
    out_coef = np.zeros((n_features, len(order)))
    out_intercept = np.full(len(order), -np.inf)
    for j, label in enumerate(order):
        if label in classes:
            out_coef[:, j] = coef[classes.index(label)]
            out_intercept[j] = intercept[classes.index(label)]
    return out_coef, out_intercept


def head_device(b: DictConfig) -> str | None:
    """Where the heads are solved: "cuda" (baseline.device auto on a machine whose
    NVIDIA driver torch sees, or cuda), else None (the CPU's cores: ticketml.logistic)."""
    choice = str(b.device).lower()
    if choice not in ("auto", "cpu", "cuda"):
        raise ModelError(f"baseline.device={choice}: auto | cpu | cuda")
    if choice == "cpu" or (choice == "auto" and not Path("/dev/nvidiactl").exists()):
        return None  # no driver: not even torch's import is paid
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if choice == "cuda":
        raise ModelError("baseline.device=cuda, but torch sees no CUDA device")
    return None


def fit_head(
    matrix: sparse.csr_matrix,
    labels: np.ndarray,
    order: list[str],
    b: DictConfig,
    threads: int,
    device: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One logistic regression (scikit-learn's lbfgs objective, its loss summed over `threads`
    row shards, or computed on `device`); (coef (n_features, classes), intercept) in label-map
    order (`class_columns`)."""
    fit = fit_logistic(
        matrix, labels, float(b.C), b.class_weight, int(b.max_iter), threads=threads, device=device
    )
    return class_columns(fit, order, matrix.shape[1])


def head_layout(nnz: int, device: str | None = None) -> tuple[int, int]:
    """(processes, threads per head) for fitting the heads of a matrix with `nnz` nonzeros:
    worker processes cost a second or two to start, worth it only for a large matrix on the
    CPU (on a GPU the heads take turns in this process)."""
    jobs = max(1, min(len(TASKS), cpu_count())) if nnz > PARALLEL_NNZ and not device else 1
    return jobs, max(1, cpu_count() // jobs)


def fit_heads(
    matrix: sparse.csr_matrix,
    train: pd.DataFrame,
    label_maps: dict,
    b: DictConfig,
    device: str | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every task's head at the same time, one process each (L-BFGS's own step holds the GIL;
    joblib shares the matrix with them through memory maps), each summing its loss over row
    shards in threads on its share of the cores (scipy's sparse products release the GIL).
    Each head fits on the rows labelled for its task (partial labels). On a `device` the
    heads take turns in this process, each solved there (DeviceLoss, device_lbfgs)."""
    from joblib import Parallel, delayed

    jobs, threads = head_layout(matrix.nnz, device)
    rows = {t: (train[t] != MISSING).to_numpy() for t in TASKS}
    return Parallel(n_jobs=jobs, backend="loky" if jobs > 1 else "sequential")(
        delayed(fit_head)(
            matrix if rows[t].all() else matrix[rows[t]],
            train[t].to_numpy()[rows[t]],
            label_maps[t],
            b,
            threads,
            device,
        )
        for t in TASKS
    )


def fit_baseline(
    train: pd.DataFrame, label_maps: dict[str, list[str]], b: DictConfig
) -> TfidfClassifier:
    """Fit the shared features once, then every task's head."""
    texts = train["text"].tolist()
    started = time.perf_counter()
    features, matrix = fit_features(texts, b)
    features_s = time.perf_counter() - started
    log.info(
        "baseline features: %d word + %d char n-grams, %d nonzeros, %.1f s",
        len(features.word_vocab),
        len(features.char_keys),
        matrix.nnz,
        features_s,
    )
    device = head_device(b)
    heads = fit_heads(matrix, train, label_maps, b, device)
    heads_s = time.perf_counter() - started - features_s
    log.info("baseline heads: %.1f s on %s", heads_s, device or f"{cpu_count()} cores")
    meta = {
        "config": OmegaConf.to_container(b, resolve=True),
        "word_ngram_range": [1, int(b.word_ngram_max)],
        "char_ngram_range": [int(b.char_ngram_min), int(b.char_ngram_max)],
        "sublinear_tf": True,
        "train_rows": len(texts),
        "seconds": {"features": features_s, "heads": heads_s, "fit": time.perf_counter() - started},
        "heads_device": device or "cpu",
    }
    return TfidfClassifier(
        features,
        np.hstack([c for c, _ in heads]),
        np.concatenate([i for _, i in heads]),
        {t: list(label_maps[t]) for t in TASKS},
        meta,
    )


def out_of_fold_probs(
    train: pd.DataFrame,
    label_maps: dict,
    b: DictConfig,
    folds: int,
    seed: int,
    held: dict[str, pd.DataFrame] | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """The baseline's probabilities per task that no row's own label shaped, the teacher of
    train.distill_weight and train.baseline_product: {"train": every train row's from heads
    fitted on the other folds (stratified by topic), and per `held` split (e.g. val) the mean
    of the fold heads' probabilities}. The features are fitted once on every train text (they
    read no label); the heads as `fit_baseline` fits them, on the rows labelled for their task."""
    from pyfunc.probability import softmax

    started = time.perf_counter()
    features, matrix = fit_features(train["text"].tolist(), b)
    others = {
        name: csr(features.transform(df["text"].tolist()), len(df), features.n_features)
        for name, df in (held or {}).items()
    }
    device = head_device(b)
    out = {
        name: {t: np.zeros((m.shape[0], len(label_maps[t]))) for t in TASKS}
        for name, m in {"train": matrix, **others}.items()
    }
    splits = fold_splits(encode_labels(train, label_maps)["topic"], folds, seed)
    for fitted, kept_out in splits:
        heads = fit_heads(matrix[fitted], train.iloc[fitted], label_maps, b, device)
        for task, (coef, intercept) in zip(TASKS, heads, strict=True):
            out["train"][task][kept_out] = softmax(np.asarray(matrix[kept_out] @ coef) + intercept)
            for name, m in others.items():
                out[name][task] += softmax(np.asarray(m @ coef) + intercept) / len(splits)
    log.info(
        "baseline out-of-fold probabilities: %d rows, %d folds, %.1f s on %s",
        len(train),
        folds,
        time.perf_counter() - started,
        device or f"{cpu_count()} cores",
    )
    return out


def sklearn_parity(model: TfidfClassifier, texts: list[str]) -> dict[str, float]:
    """Max |difference| of the features and the probabilities against scikit-learn's
    TfidfVectorizers (given this model's vocabularies and idf) and the same linear heads."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from pyfunc.probability import softmax

    f = model.features
    word = TfidfVectorizer(
        ngram_range=f.word_range, sublinear_tf=f.sublinear, vocabulary=f.word_vocab
    ).fit(texts[:1])
    word.idf_ = f.word_idf
    char = TfidfVectorizer(
        analyzer="char_wb",
        ngram_range=(f.chars.low, f.chars.high),
        sublinear_tf=f.sublinear,
        vocabulary=f.chars.decode(f.char_keys),
    ).fit(texts[:1])
    char.idf_ = f.char_idf
    ref = sparse.hstack([word.transform(texts), char.transform(texts)]).tocsr()
    ours = csr(f.transform(texts), len(texts), f.n_features)
    scores = ref @ model.coef + model.intercept
    ref_probs = {t: softmax(scores[:, cols]) for t, cols in model.columns.items()}
    probs = model.predict_proba(texts)
    return {
        "features_max_abs_diff": float(abs(ours - ref).max()) if ref.nnz else 0.0,
        "proba_max_abs_diff": max(float(np.abs(probs[t] - ref_probs[t]).max()) for t in probs),
    }


def save_baseline(model: TfidfClassifier, path: Path) -> float:
    """Write the model's arrays (npz, no pickle) atomically; returns the seconds it took."""
    started = time.perf_counter()
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **model.to_arrays())
    return time.perf_counter() - started


def load_baseline(cfg: DictConfig) -> TfidfClassifier:
    path = baseline_path(cfg)
    if not path.is_file():
        raise ModelError(f"{path}: no baseline model (run `ticketml baseline` first)")
    try:
        return TfidfClassifier.load(path)
    except (ValueError, KeyError, OSError) as exc:
        raise ModelError(f"cannot load the baseline {path}: {exc}") from exc


def fit_and_score(cfg: DictConfig, splits: dict, label_maps: dict):
    """Fit on train, check against scikit-learn, score val and test: (model, metrics, parity,
    val/test probabilities)."""
    log.info("fitting the baseline on %d rows", len(splits["train"]))
    model = fit_baseline(splits["train"], label_maps, cfg.baseline)
    parity = sklearn_parity(model, splits["test"]["text"].head(PARITY_ROWS).tolist())
    if max(parity.values()) > 1e-6:
        raise ModelError(f"the baseline differs from scikit-learn: {parity}")
    probs = {s: predict_proba_parallel(model, splits[s]["text"].tolist()) for s in ("val", "test")}
    metrics = {
        s: evaluate_probs(probs[s], encode_labels(splits[s], label_maps), label_maps)
        for s in ("val", "test")
    }
    return model, metrics, parity, probs


def run_baseline(cfg: DictConfig) -> dict:
    """Fit on train, check against scikit-learn, evaluate on val/test, save; log to MLflow (the
    run spans the fit, with the splits as its dataset inputs)."""
    from ticketml import scores
    from ticketml.tracking import stage_run

    splits = load_splits(cfg)
    label_maps = load_label_maps(cfg)
    with stage_run(cfg, "baseline") as stage:
        stage.inputs(cfg, ("train", "val", "test"), splits)
        model, metrics, parity, probs = fit_and_score(cfg, splits, label_maps)
        path = baseline_path(cfg)
        save_s = save_baseline(model, path)
        artifacts = Path(cfg.paths.artifacts_dir)
        scores.clear(artifacts, scores.TFIDF)  # the former baseline's
        store = tfidf_scorer(model, path, artifacts).store
        for s in ("val", "test"):  # for export_onnx and evaluate to read back
            store.put(splits[s]["text"].tolist(), probs[s])
        summary = {
            **model.meta["seconds"],
            "save": save_s,
            "file_mb": path.stat().st_size / 2**20,
            "n_features": model.features.n_features,
            "parity": parity,
        }
        metrics_path = write_json(
            {**metrics, "summary": summary},
            Path(cfg.paths.artifacts_dir) / "metrics" / "baseline.json",
        )
        stage.metrics(flat_metrics(metrics))
        stage.metrics({f"seconds_{k}": v for k, v in summary.items() if k in ("fit", "save")})
        stage.artifact(metrics_path, "metrics")
        for plot in confusion_plots(metrics, label_maps, cfg.paths.plots_dir, "baseline"):
            stage.artifact(plot, "plots")
        stage.artifact(path, "baseline")
    for split in ("val", "test"):
        print(summary_line("baseline", split, metrics[split]))
    print(
        f"baseline: fit {summary['fit']:.1f} s (features {summary['features']:.1f} s, heads "
        f"{summary['heads']:.1f} s on {model.meta['heads_device']}), saved in {save_s:.2f} s "
        f"({summary['file_mb']:.1f} MB, {summary['n_features']} features) -> {path}"
    )
    return metrics
