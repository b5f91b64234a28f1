import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

from pyfunc.core import TicketClassifier
from ticketml.config import load_config
from ticketml.export import load_checkpoint


def test_export_writes_graph_serving_files_and_metrics(exported_model):
    art = exported_model / "artifacts"
    for name in (
        "model.onnx",
        "model.int8.onnx",
        "tokenizer.json",
        "label_maps.json",
        "model_config.json",
    ):
        assert (art / name).stat().st_size > 0, name
    onnx = json.loads((art / "metrics/onnx.json").read_text())
    torch_metrics = json.loads((art / "metrics/multitask.json").read_text())
    for task in ("topic", "priority"):
        assert onnx["parity"][f"{task}_max_abs_diff"] <= 1e-4
        assert onnx["parity"][f"{task}_argmax_agreement"] == 1.0
        # the fp32 graph decides as the torch model did (identical argmax on the parity rows):
        # its test macro-F1 is train's
        assert onnx["test"][task]["macro_f1"] == pytest.approx(
            torch_metrics["test"][task]["macro_f1"], abs=0.02
        )
    int8 = json.loads((art / "metrics/onnx_int8.json").read_text())
    assert int8["size_mb"] < onnx["size_mb"]
    session = ort.InferenceSession(str(art / "model.onnx"))
    assert [o.name for o in session.get_outputs()] == ["topic_logits", "priority_logits"]


@pytest.mark.parametrize("batch", [1, 3, 17])
@pytest.mark.parametrize("length", [5, 40, 64])
def test_dynamic_batch_and_sequence_axes_match_torch(exported_model, monkeypatch, batch, length):
    monkeypatch.chdir(exported_model)
    model = load_checkpoint(load_config())
    session = ort.InferenceSession(str(exported_model / "artifacts/model.onnx"))
    rng = np.random.default_rng(batch * 100 + length)
    ids = rng.integers(1000, 5000, size=(batch, length)).astype(np.int64)
    mask = np.ones_like(ids)
    mask[0, max(1, length // 2) :] = 0  # one padded row
    topic, priority = session.run(None, {"input_ids": ids, "attention_mask": mask})
    with torch.no_grad():
        ref = model(torch.from_numpy(ids), torch.from_numpy(mask))
    assert topic.shape == (batch, len(model.hparams.label_maps["topic"]))
    assert np.abs(ref["topic"].numpy() - topic).max() <= 1e-4
    assert np.abs(ref["priority"].numpy() - priority).max() <= 1e-4


def test_core_truncates_long_texts_and_scores_sum_to_one(exported_model):
    clf = TicketClassifier.from_dir(exported_model / "artifacts")
    enc = clf.encode(["word " * 5000, "short"])
    assert enc["input_ids"].shape == (2, clf.config["max_length"])
    rows = clf.predict(
        ["word " * 5000, "Не могу подключиться к VPN", "refund please"], min_confidence=0.99
    )
    for row in rows:
        assert sum(row["topic_scores"].values()) == pytest.approx(1, abs=1e-4)
        assert sum(row["priority_scores"].values()) == pytest.approx(1, abs=1e-4)
        # labels follow the balanced decision rule (see test_hybrid); review by the top score
        assert row["topic"] in row["topic_scores"] and row["priority"] in row["priority_scores"]
        assert row["needs_review"] == (row["topic_scores"][row["topic"]] < 0.99)


def test_export_without_a_checkpoint_fails_clearly(data_workdir, capsys):
    from tests.conftest import run_cli

    assert run_cli("export_onnx") == 1
    assert "no trained model" in capsys.readouterr().err
    assert not (data_workdir / "artifacts/model.onnx").exists()


def test_int8_scores_move_with_the_batch_labels_do_not(exported_model):
    """Dynamic INT8 quantisation scales each MatMul's input by its batch's range: a ticket's
    scores depend (a little) on the tickets scored with it. fp32 does not."""
    import numpy as np
    import pandas as pd

    from pyfunc.core import TicketClassifier

    texts = pd.read_parquet(exported_model / "data/processed/test.parquet")["raw_text"].tolist()
    for int8, bound in ((True, 0.05), (False, 1e-6)):
        model = TicketClassifier.from_dir(exported_model / "artifacts", int8=int8)
        together = model.predict_proba(texts)
        alone = [model.predict_proba([t]) for t in texts]
        for task, probs in together.items():
            one_by_one = np.concatenate([a[task] for a in alone])
            assert (probs.argmax(1) == one_by_one.argmax(1)).all()
            assert np.abs(probs - one_by_one).max() < bound


def test_head_tail_truncation_is_the_same_in_training_and_serving(data_workdir, tiny_encoder):
    """A long ticket keeps its start and its end; the served model cuts it as training did."""
    import json

    from pyfunc.core import TicketClassifier, head_and_tail
    from tests.conftest import run_cli, tiny_overrides
    from ticketml.config import load_config
    from ticketml.training.train import build_datamodule

    assert head_and_tail(list(range(10)), 6, 2) == [0, 1, 6, 7, 8, 9]
    assert head_and_tail([1, 2, 3], 6, 2) == [1, 2, 3]
    overrides = [*tiny_overrides(tiny_encoder), "model.truncation=head_tail", "model.head_tokens=8"]
    assert run_cli("baseline", "baseline.max_features=3000") == 0
    assert run_cli("train", *overrides) == 0 and run_cli("export_onnx", *overrides) == 0
    config = json.loads((data_workdir / "artifacts/model_config.json").read_text())
    assert config["truncation"] == "head_tail" and config["head_tokens"] == 8
    core = TicketClassifier.from_dir(data_workdir / "artifacts")
    text = "VPN down. " + "log line 42 " * 200 + "Please fix it urgently!"
    served = core.tokenize([text])[0]
    dm = build_datamodule(load_config(overrides))
    assert dm.encode_texts([text])[0] == served and len(served) == 64
    assert core.tokenizer.decode(served[-8:]).endswith("please fix it urgently!")
