import hashlib

import numpy as np
import pandas as pd

from tests.conftest import run_cli
from ticketml.data import synthetic
from ticketml.data.sources import SYNTHETIC_WARNING


def test_same_seed_same_file_and_different_seed_differs(workdir, capsys):
    assert run_cli("download_data", "data.synthetic.n_samples=300", "seed=5") == 0
    first = hashlib.sha256((workdir / "data/raw/synthetic.csv").read_bytes()).hexdigest()
    assert SYNTHETIC_WARNING in capsys.readouterr().out
    assert run_cli("download_data", "data.synthetic.n_samples=300", "seed=5") == 0
    assert hashlib.sha256((workdir / "data/raw/synthetic.csv").read_bytes()).hexdigest() == first
    assert run_cli("download_data", "data.synthetic.n_samples=300", "seed=6") == 0
    assert hashlib.sha256((workdir / "data/raw/synthetic.csv").read_bytes()).hexdigest() != first


def test_generated_data_has_languages_topics_priorities_and_imbalance():
    df = synthetic.generate(3000, seed=1)
    assert len(df) == 3000
    assert set(df["language"]) == {"en", "ru"}
    assert 0.2 < (df["language"] == "ru").mean() < 0.4
    assert df["topic"].nunique() >= 6
    assert set(df["priority"]) == {"low", "medium", "high"}
    counts = df["topic"].value_counts()
    assert counts.max() / counts.min() > 2.5  # realistic imbalance
    assert df["text"].str.contains("[а-яА-Я]", regex=True).sum() > 500
    assert df["text"].nunique() > 2800  # varied, not a handful of templates


def test_latents_leave_the_rows_unchanged_and_bayes_posterior_matches_the_generator():
    plain = synthetic.generate(20000, seed=3)
    df = synthetic.generate(20000, seed=3, latents=True)
    assert df[plain.columns].equals(plain)
    assert set(df["cue"]) == {"", "low", "medium", "high"}
    assert 0.10 < (df["cue"] == "").mean() < 0.22
    post = synthetic.bayes_proba(df)
    assert post["topic"].shape == (20000, len(synthetic.TOPIC_WEIGHTS))
    for probs in post.values():
        np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    # calibrated: within each (topic, cue) cell the posterior is the labels' observed frequency
    truth = (df["priority"].to_numpy()[:, None] == np.array(synthetic.PRIORITIES)[None, :]).astype(
        float
    )
    cells = df.groupby(["written_topic", "cue"]).indices
    checked = 0
    for rows in cells.values():
        if len(rows) >= 400:
            observed, expected = truth[rows].mean(axis=0), post["priority"][rows].mean(axis=0)
            np.testing.assert_allclose(observed, expected, atol=0.06)
            checked += 1
    assert checked >= 5
    topic_acc = (
        post["topic"].argmax(1) == df["topic"].map(list(synthetic.TOPIC_WEIGHTS).index)
    ).mean()
    assert 0.94 < topic_acc < 0.98  # 5% label noise, 1/7 of it lands on the same topic


def test_ceiling_proba_only_for_rows_this_generator_wrote():
    from ticketml.config import load_config

    cfg = load_config(["data.synthetic.n_samples=200"])
    rows = synthetic.written_from(cfg).index[:50].tolist()
    label_maps = {"topic": sorted(synthetic.TOPIC_WEIGHTS), "priority": ["low", "medium", "high"]}
    probs = synthetic.ceiling_proba(cfg, rows, label_maps)
    assert probs["topic"].shape == (50, 7) and probs["priority"].shape == (50, 3)
    # columns follow the label maps: the written topic gets the mass
    written = synthetic.written_from(cfg).loc[rows, "written_topic"]
    assert (np.array(label_maps["topic"])[probs["topic"].argmax(1)] == written.to_numpy()).all()
    assert synthetic.ceiling_proba(cfg, [*rows, "My printer is on fire."], label_maps) is None


def test_data_keeps_the_latents_it_wrote_and_the_ceiling_reads_them(workdir):
    from ticketml.config import load_config
    from ticketml.data.sources import download_data

    overrides = ["data.synthetic.n_samples=300", "data.source=synthetic"]
    cfg = load_config(overrides)
    raw = pd.read_csv(download_data(cfg))
    assert list(raw.columns) == ["text", "topic", "priority", "language"]  # the export as before
    kept = pd.read_parquet(synthetic.latents_path(cfg))
    assert kept["text"].tolist() == raw["text"].tolist()
    regenerated = synthetic.from_config(cfg, latents=True)
    assert (kept[synthetic.LATENTS] == regenerated[synthetic.LATENTS]).all().all()
    # read back instead of generated again: another config's generator would not know the rows
    other = load_config([*overrides, "seed=7"])
    rows = synthetic.written_from(cfg).index[:20].tolist()
    label_maps = {"topic": sorted(synthetic.TOPIC_WEIGHTS), "priority": ["low", "medium", "high"]}
    assert synthetic.ceiling_proba(other, rows, label_maps) is not None
    synthetic.latents_path(cfg).unlink()
    assert synthetic.ceiling_proba(other, rows, label_maps) is None
