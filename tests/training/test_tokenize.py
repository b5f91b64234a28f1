"""A whole split is tokenised with the tokenizers library's own threads, the same ids as one
thread, and TOKENIZERS_PARALLELISM is back as it was for the processes forked later."""

import os

import pytest

from ticketml.encoder import ENGLISH_ENCODER, load_tokenizer
from ticketml.training.datamodule import PARALLELISM, tokenizer_threads


def test_threads_give_the_same_ids_and_the_setting_comes_back(monkeypatch):
    tok = load_tokenizer(ENGLISH_ENCODER)
    texts = [
        f"ticket {i}: VPN drops\n  at com.acme.Net.connect(Net.java:{i})\n" * 30 for i in range(300)
    ]
    monkeypatch.setenv(PARALLELISM, "false")
    single = tok(texts, truncation=False)["input_ids"]
    with tokenizer_threads():
        assert os.environ[PARALLELISM] == "true"
        threaded = tok(texts, truncation=False)["input_ids"]
    assert threaded == single and len(single[0]) > 300
    assert os.environ[PARALLELISM] == "false"

    monkeypatch.delenv(PARALLELISM)  # unset: false after, so a forked process stays quiet
    with pytest.raises(RuntimeError), tokenizer_threads():
        raise RuntimeError("a failed call")
    assert os.environ[PARALLELISM] == "false"
