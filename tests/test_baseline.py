import json

import mlflow
import numpy as np
import pytest
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

from pyfunc.tfidf import CharKeys, TfidfClassifier
from tests.conftest import run_cli
from ticketml.baseline import csr, fit_baseline, fit_features, select_terms, sklearn_parity
from ticketml.config import load_config
from ticketml.data.synthetic import generate

ODD_TEXTS = [
    "",
    "   ",
    "a",
    "I",
    "Wi-Fi!!  VPN\\n\\tдоступ   к  сети",
    "ÄÖÜ ß 😀 token İstanbul",  # 'İ'.lower() is two code points
    "lone \ud800 surrogate",
    "tab\tand\nnewline\r\nand\u00a0nbsp\u2003em-space",
    "x" * 300,
]


def _corpus(n=400, seed=0, long_share=0.3):
    return generate(n, seed=seed, long_share=long_share)


def sklearn_union(cfg, texts, max_features=None):
    b = cfg.baseline
    word = TfidfVectorizer(
        ngram_range=(1, b.word_ngram_max),
        sublinear_tf=True,
        min_df=b.word_min_df,
        max_features=max_features,
    )
    char = TfidfVectorizer(
        analyzer="char_wb",
        ngram_range=(b.char_ngram_min, b.char_ngram_max),
        sublinear_tf=True,
        min_df=b.char_min_df,
        max_features=max_features,
    )
    return word, char, sparse.hstack([word.fit_transform(texts), char.fit_transform(texts)]).tocsr()


@pytest.mark.parametrize(
    "overrides", [[], ["baseline.char_ngram_min=4", "baseline.char_ngram_max=6"]]
)
def test_fitted_features_are_scikit_learns(overrides):
    """Vocabularies, idf and the training matrix equal scikit-learn's TfidfVectorizer fit."""
    cfg = load_config([*overrides, "baseline.max_features=0"])
    texts = [*_corpus()["text"], *ODD_TEXTS]
    features, matrix = fit_features(texts, cfg.baseline)
    word, char, ref = sklearn_union(cfg, texts)
    assert features.word_vocab == sorted(word.vocabulary_)
    assert features.chars.decode(features.char_keys) == sorted(char.vocabulary_)
    assert np.allclose(features.word_idf, word.idf_) and np.allclose(features.char_idf, char.idf_)
    assert matrix.shape == ref.shape
    assert abs(matrix - ref).max() < 1e-6  # the training matrix is float32
    unseen = [*_corpus(60, seed=5)["text"], *ODD_TEXTS, "ʘ unseen ʘ characters"]
    ours = csr(features.transform(unseen), len(unseen), features.n_features)
    theirs = sparse.hstack([word.transform(unseen), char.transform(unseen)]).tocsr()
    assert abs(ours - theirs).max() < 1e-12


def test_a_binding_max_features_differs_from_scikit_learn_only_on_ties_at_the_cutoff():
    """scikit-learn breaks ties at the max_features cutoff in no set order; we keep the
    alphabetically first. Every other term is kept or dropped alike."""
    from sklearn.feature_extraction.text import CountVectorizer

    texts = _corpus(300)["text"].tolist()
    cfg = load_config(["baseline.max_features=3000"])
    features, _ = fit_features(texts, cfg.baseline)
    word, _, _ = sklearn_union(cfg, texts, max_features=3000)
    counts = CountVectorizer(ngram_range=(1, 2)).fit(texts)
    total = dict(
        zip(counts.get_feature_names_out(), counts.transform(texts).sum(0).A1, strict=True)
    )
    ours, theirs = set(features.word_vocab), set(word.vocabulary_)
    cutoff = min(total[t] for t in ours)
    assert len(ours) == len(theirs) == 3000
    assert {total[t] for t in ours ^ theirs} <= {cutoff}


def test_max_features_keeps_the_most_frequent_and_breaks_ties_alphabetically():
    # term ids are alphabetical; (term, count) per (doc, term) pair
    terms = np.array([0, 1, 2, 3, 1, 2, 3, 3])
    counts = np.array([5, 1, 1, 1, 1, 1, 1, 1])
    # totals: 0→5, 1→2, 2→2, 3→3; df: 0→1, 1→2, 2→2, 3→3
    assert select_terms(terms, counts, 4, 1, 2).tolist() == [0, 3]
    assert select_terms(terms, counts, 4, 1, 3).tolist() == [0, 1, 3]  # 1 before 2 on the tie
    assert select_terms(terms, counts, 4, 2, None).tolist() == [1, 2, 3]


def test_char_keys_sort_like_strings_and_decode_back():
    chars = CharKeys.for_texts(["abc zyx ЖЁ"], 2, 5)
    docs, keys = chars.keys(["ab zy ЖЁ", "c"])
    grams = chars.decode(keys)
    assert sorted(grams) == [grams[i] for i in np.argsort(keys)]
    assert " c " in grams and docs[grams.index(" c ")] == 1
    with pytest.raises(ValueError, match="lower baseline.char_ngram_max"):
        CharKeys(np.arange(40, 40 + 8000), 2, 5)  # 8,000 distinct characters need 4-grams or less


@pytest.mark.parametrize("priorities", [("low", "medium", "high"), ("low", "high")])
def test_served_probabilities_match_scikit_learn(priorities):
    """The numpy model scores like scikit-learn's vectorizers + the same heads, and predicts like a
    plain scikit-learn pipeline fitted on the same rows."""
    from sklearn.linear_model import LogisticRegression

    df = _corpus(500)
    df = df[df["priority"].isin(priorities)]
    cfg = load_config(["baseline.max_features=0"])
    label_maps = {"topic": sorted(df["topic"].unique()), "priority": list(priorities)}
    model = fit_baseline(df, label_maps, cfg.baseline)
    texts = [*_corpus(80, seed=9)["text"], *ODD_TEXTS]
    parity = sklearn_parity(model, texts)
    assert parity["features_max_abs_diff"] < 1e-12 and parity["proba_max_abs_diff"] < 1e-9
    probs = model.predict_proba(texts)
    word, char, train = sklearn_union(cfg, df["text"].tolist())
    test = sparse.hstack([word.transform(texts), char.transform(texts)]).tocsr()
    for task in ("topic", "priority"):
        assert np.allclose(probs[task].sum(1), 1)
        ref = LogisticRegression(C=5.0, class_weight="balanced", max_iter=2000).fit(train, df[task])
        ref_probs = ref.predict_proba(test)[
            :, [list(ref.classes_).index(c) for c in label_maps[task]]
        ]
        assert np.abs(probs[task] - ref_probs).max() < 1e-3  # float32 fit, same optimum


def test_save_and_load_round_trip_without_pickle(tmp_path):
    from ticketml.baseline import save_baseline

    df = _corpus(200)
    label_maps = {t: sorted(df[t].unique()) for t in ("topic", "priority")}
    model = fit_baseline(df, label_maps, load_config().baseline)
    save_baseline(model, tmp_path / "baseline.npz")
    assert [p.name for p in tmp_path.iterdir()] == ["baseline.npz"]
    loaded = TfidfClassifier.load(tmp_path / "baseline.npz")
    texts = df["text"].head(20).tolist()
    for task, p in model.predict_proba(texts).items():
        assert (loaded.predict_proba(texts)[task] == p).all()
    arrays = dict(np.load(tmp_path / "baseline.npz"))
    arrays["coef"] = np.array([object()], dtype=object)  # a pickled array is never loaded
    np.savez(tmp_path / "evil.npz", **arrays)
    with pytest.raises(ValueError, match="allow_pickle"):
        TfidfClassifier.load(tmp_path / "evil.npz")


def test_baseline_is_learnable_on_the_default_synthetic_data(workdir):
    """On the default data the baseline lands well above chance but below perfect."""
    assert run_cli("data") == 0
    assert run_cli("baseline") == 0
    metrics = json.loads((workdir / "artifacts/metrics/baseline.json").read_text())
    for split in ("val", "test"):
        for task in ("topic", "priority"):
            assert 0.6 <= metrics[split][task]["macro_f1"] <= 0.95, (
                split,
                task,
                metrics[split][task]["macro_f1"],
            )
            assert (
                set(metrics[split][task]["per_class"])
                and "confusion_matrix" in metrics[split][task]
            )
    assert metrics["summary"]["parity"]["proba_max_abs_diff"] < 1e-6
    assert sorted(p.name for p in (workdir / "artifacts").iterdir()) == [
        ".scores",  # its val and test probabilities, for export_onnx and evaluate to read back
        "baseline.npz",
        "data_report.json",
        "label_maps.json",
        "metrics",
    ]
    for task in ("topic", "priority"):
        assert (workdir / f"plots/baseline_confusion_matrix_{task}.png").stat().st_size > 1000
    mlflow.set_tracking_uri(f"sqlite:///{workdir}/mlflow.db")
    runs = mlflow.search_runs(experiment_names=["ticketml"])
    assert sorted(runs["tags.ticketml.stage"]) == ["baseline", "preprocess"]
    run = runs[runs["tags.ticketml.stage"] == "baseline"].iloc[0]
    assert run["metrics.test_topic_macro_f1"] == metrics["test"]["topic"]["macro_f1"]
    assert run["tags.data_version"] != "unknown" and run["tags.git_commit"]
    assert run["params.baseline.C"] == "5.0"
    # the logged model is the saved file
    logged = mlflow.artifacts.download_artifacts(f"runs:/{run['run_id']}/baseline/baseline.npz")
    texts = ["VPN is down", "Двойное списание"]
    local = TfidfClassifier.load(workdir / "artifacts/baseline.npz").predict_proba(texts)
    assert (TfidfClassifier.load(logged).predict_proba(texts)["topic"] == local["topic"]).all()


def test_a_split_scored_on_every_core_gets_the_same_numbers(monkeypatch):
    """predict_proba_parallel (baseline, export and evaluate score whole splits with it): chunks
    in worker processes, the rows' probabilities exactly the in-process ones, in order."""
    from ticketml import baseline

    df = _corpus(300)
    cfg = load_config(["baseline.max_features=0"])
    label_maps = {t: sorted(df[t].unique()) for t in ("topic", "priority")}
    model = fit_baseline(df, label_maps, cfg.baseline)
    texts = [*_corpus(250, seed=3)["text"], *ODD_TEXTS]
    monkeypatch.setattr(baseline, "CHUNK_DOCS", 64)  # several chunks from a small split
    monkeypatch.setattr(baseline, "cpu_count", lambda: 2)
    parallel = baseline.predict_proba_parallel(model, texts)
    serial = model.predict_proba(texts)
    for task in ("topic", "priority"):
        assert parallel[task].shape == (len(texts), len(label_maps[task]))
        np.testing.assert_array_equal(parallel[task], serial[task])
