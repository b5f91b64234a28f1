"""A whole split is tokenised with the tokenizers library's own threads (training, and the
served core scoring whole splits in export), the same ids as one thread, and
TOKENIZERS_PARALLELISM is back as it was for the processes forked later."""

import os

import pytest

from pyfunc.core import PARALLELISM, TicketClassifier, tokenizer_threads
from ticketml.encoder import ENGLISH_ENCODER, load_tokenizer


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


def test_the_served_core_scoring_a_split_tokenises_with_threads_to_the_same_ids(
    exported_model, monkeypatch
):
    clf = TicketClassifier.from_dir(exported_model / "artifacts", transformer_only=True)
    texts = [
        f"printer {i} jams, see log:\n  at com.acme.Spool.run(Spool.java:{i})\n" * 20
        for i in range(50)
    ]
    monkeypatch.setenv(PARALLELISM, "false")
    one = clf.tokenize(texts)
    seen = []
    real = clf.tokenizer.encode_batch
    monkeypatch.setattr(
        clf.tokenizer, "encode_batch", lambda b: seen.append(os.environ[PARALLELISM]) or real(b)
    )
    clf.workers = 4  # as export's split scorer sets it
    assert clf.tokenize(texts) == one
    assert seen == ["true"] and os.environ[PARALLELISM] == "false"


@pytest.mark.parametrize("head_tokens", [0, 24])
def test_training_ids_are_the_ids_transformers_gives(head_tokens):
    """Training tokenises with the tokenizers library directly (pyfunc.core.token_ids): the same
    ids as the encoder's transformers tokenizer, cut at max_length or head and tail."""
    from pyfunc.core import head_and_tail
    from ticketml.training.datamodule import TicketDataModule

    tok = load_tokenizer(ENGLISH_ENCODER)
    texts = ["", "VPN down", "Привет, принтер не печатает " * 40]
    texts += [
        f"ERROR [svc-{i}] at com.acme.Net.connect(Net.java:{i})\n" * (i % 7 + 1) for i in range(60)
    ]
    dm = TicketDataModule(
        {}, {}, tok, max_length=48, batch_size=8, text_prefix="query: ", head_tokens=head_tokens
    )
    prefixed = [f"query: {t}" for t in texts]
    if head_tokens:
        expected = [head_and_tail(r, 48, head_tokens) for r in tok(prefixed)["input_ids"]]
    else:
        expected = tok(prefixed, truncation=True, max_length=48)["input_ids"]
    long = ["x " * 100]
    assert len(tok(long, truncation=True, max_length=8)["input_ids"][0]) == 8  # between them
    got = dm.encode_texts(texts)
    assert got == expected
    assert max(map(len, got)) == 48 and len(got[1]) < 48
    # the same tokenizer object: transformers' own calls still cut as they ask
    assert len(tok(long, truncation=True, max_length=8)["input_ids"][0]) == 8
    assert len(tok(long)["input_ids"][0]) == 102
