"""model.encoder_name=auto: the encoder chosen for the export and the machine (README "Real
tickets on a GPU": multilingual-e5-small where a GPU trains on tickets that are not all English)."""

import pandas as pd
import pytest

from ticketml.encoder import (
    ENGLISH_ENCODER,
    MULTILINGUAL_ENCODER,
    choose_encoder,
    non_english_share,
    resolve_encoder,
)
from ticketml.errors import ModelError


def split(tmp_path, languages=None, texts=None):
    n = len(languages or texts)
    frame = pd.DataFrame({"text": texts or ["a ticket"] * n, "topic": ["t"] * n})
    if languages is not None:
        frame["language"] = languages
    path = tmp_path / "train.parquet"
    frame.to_parquet(path)
    return path


@pytest.fixture
def e5_prepared(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    (cache / MULTILINGUAL_ENCODER).mkdir(parents=True)
    (cache / MULTILINGUAL_ENCODER / "config.json").write_text("{}")
    monkeypatch.setenv("TICKETML_ENCODER_CACHE", str(cache))


def test_a_named_encoder_is_kept_and_the_cpu_keeps_minilm(tmp_path):
    missing = tmp_path / "no-split.parquet"  # neither reads the split
    assert choose_encoder("minilm", missing, on_gpu=True) == ("minilm", "set")
    assert choose_encoder("auto", missing, on_gpu=False) == (ENGLISH_ENCODER, "training on the CPU")


def test_on_a_gpu_tickets_not_all_english_get_the_multilingual_encoder(tmp_path, e5_prepared):
    mixed = split(tmp_path, ["en"] * 7 + ["ru", "de", "RU"])
    assert choose_encoder("auto", mixed, on_gpu=True) == (
        MULTILINGUAL_ENCODER,
        "30% of the training tickets not in English, on a GPU",
    )
    english = split(tmp_path, ["en"] * 19 + ["de"])
    assert choose_encoder("auto", english, on_gpu=True)[0] == ENGLISH_ENCODER  # 5%: under 10%


def test_without_e5_prepared_it_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TICKETML_ENCODER_CACHE", str(tmp_path / "empty"))
    encoder, why = choose_encoder("auto", split(tmp_path, ["ru"] * 4), on_gpu=True)
    assert encoder == ENGLISH_ENCODER
    assert (
        why
        == "100% of the training tickets not in English; multilingual-e5-small is not prepared (`make e5`)"
    )


def test_without_a_language_column_the_script_decides(tmp_path, e5_prepared):
    texts = ["VPN is down again"] * 8 + ["Не могу подключиться к VPN", "Двойное списание"]
    assert non_english_share(pd.DataFrame({"text": texts})) == pytest.approx(0.2)
    assert (
        choose_encoder("auto", split(tmp_path, texts=texts), on_gpu=True)[0] == MULTILINGUAL_ENCODER
    )
    # a language column wins, and rows without a language do not count
    frame = pd.DataFrame({"text": texts, "language": ["en"] * 8 + ["", None]})
    assert non_english_share(frame) == 0.0


def test_auto_is_chosen_where_training_starts_never_resolved_as_a_name(data_workdir, capsys):
    from ticketml.config import load_config
    from ticketml.training.runtime import resolve_runtime

    with pytest.raises(ModelError, match="model.encoder_name=auto is chosen where training starts"):
        resolve_encoder("auto")
    runtime = resolve_runtime(load_config(["train.accelerator=cpu"]))
    assert runtime.encoder_name == ENGLISH_ENCODER
    assert (
        "model.encoder_name=auto: sentence-transformers/all-MiniLM-L6-v2 (training on the CPU)"
        in (capsys.readouterr().out)
    )
