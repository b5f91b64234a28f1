import hashlib

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
