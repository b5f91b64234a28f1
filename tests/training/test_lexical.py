"""model.lexical: beside the encoder, a linear layer over the bag of the tokens it reads, trained
on its own loss and served, in the one ONNX graph, as the product of the two experts."""

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

from tests.conftest import first_val_batch, run_cli, tiny_overrides


def test_lexical_layer_learns_from_the_tokens_and_is_served_as_the_product(
    data_workdir, tiny_encoder
):
    from ticketml.config import load_config
    from ticketml.export import load_checkpoint
    from ticketml.metrics import fast_macro_f1
    from ticketml.training.module import predict_logits

    overrides = [*tiny_overrides(tiny_encoder, epochs=3), "model.lexical=true"]
    assert run_cli("baseline", "baseline.max_features=3000") == 0
    assert run_cli("train", *overrides) == 0 and run_cli("export_onnx", *overrides) == 0
    model = load_checkpoint(load_config(overrides))
    assert model.hparams.lexical and set(model.lexical) == {"topic", "priority"}

    dm, val = first_val_batch(overrides)
    ids, mask = val["input_ids"], val["attention_mask"]
    with torch.no_grad():
        deep, lexical = model.experts(ids, mask)
        served = model(ids, mask)
    # the whole val split, as the share was fitted on it
    whole = predict_logits(model, dm.eval_loader("val"), experts=True)
    labels = dm.splits["val"].labels
    summary = json.loads((data_workdir / "artifacts/metrics/multitask.json").read_text())["summary"]
    assert summary["expert_weights"] == pytest.approx(
        {t: float(getattr(model, f"expert_weight_{t}")) for t in ("topic", "priority")}
    )
    for task in ("topic", "priority"):
        # the encoder's share of the product, fitted on val after training, in the checkpoint
        a = float(getattr(model, f"expert_weight_{task}"))
        assert round(a, 6) in {round(x / 10, 1) for x in range(11)}  # the grid (float32)
        expected = a * deep[task].log_softmax(-1) + (1 - a) * lexical[task].log_softmax(-1)
        assert torch.allclose(served[task], expected, atol=1e-6)
        # on the val rows it was fitted on, no other share scores a better macro-F1
        n, keep = len(model.hparams.label_maps[task]), labels[task] >= 0

        def f1(share, task=task, n=n, keep=keep):
            d, w = (torch.from_numpy(whole[e][task]).log_softmax(-1) for e in (0, 1))
            mix = share * d + (1 - share) * w
            return fast_macro_f1(labels[task][keep], mix.argmax(-1).numpy()[keep], n)

        assert f1(a) >= max(f1(0.0), f1(0.5), f1(1.0)) - 1e-9
    # the token layer learned on its own: the synthetic topics have their own words, and three
    # epochs of the layer alone tell them apart (a layer left at zero predicts one class)
    n = len(model.hparams.label_maps["topic"])
    alone = fast_macro_f1(labels["topic"], whole[1]["topic"].argmax(-1), n)
    assert alone >= 0.5, alone
    # padding adds nothing: a batch padded wider scores each row the same
    padded = torch.cat([ids, torch.zeros_like(ids[:, :7])], dim=1)
    with torch.no_grad():
        again = model.experts(padded, torch.cat([mask, torch.zeros_like(mask[:, :7])], dim=1))[1]
    assert torch.allclose(again["topic"], lexical["topic"], atol=1e-6)
    # model.combiner=auto pools a transformer with its token layer and the baseline
    hybrid = json.loads((data_workdir / "artifacts/hybrid.json").read_text())
    assert {hybrid[t]["method"] for t in ("topic", "priority")} == {"pool"}

    # the exported graph is the product, as torch computes it
    session = ort.InferenceSession(str(data_workdir / "artifacts/model.onnx"))
    topic, priority = session.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})
    assert np.abs(topic - served["topic"].numpy()).max() <= 1e-4
    assert np.abs(priority - served["priority"].numpy()).max() <= 1e-4
    # the serving core (every serving path's) runs that graph on the ticket texts themselves
    from pyfunc.core import TicketClassifier

    core = TicketClassifier.from_dir(data_workdir / "artifacts", int8=False)
    texts = dm.frames["val"]["text"].iloc[val["index"].numpy()].tolist()
    assert np.abs(core.run_logits(texts)["topic"] - served["topic"].numpy()).max() <= 1e-4
    # and its INT8 form (the token tables quantised as the encoder's embeddings are: per
    # tensor) keeps the labels of the fp32 graph on these rows
    int8 = ort.InferenceSession(str(data_workdir / "artifacts/model.int8.onnx"))
    q_topic, q_priority = int8.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})
    assert (q_topic.argmax(1) == topic.argmax(1)).mean() >= 0.95
    assert (q_priority.argmax(1) == priority.argmax(1)).mean() >= 0.95


def test_lexical_auto_is_on_for_gpu_training_and_off_on_the_cpu():
    from dataclasses import replace

    from ticketml.config import load_config
    from ticketml.errors import TicketMLError
    from ticketml.training.runtime import lexical_layer, resolve_runtime

    cfg = load_config(["train.accelerator=cpu"])
    assert str(cfg.model.lexical) == "auto"  # the shipped default
    cpu = resolve_runtime(cfg)
    gpu = replace(cpu, accelerator="gpu")
    assert not lexical_layer(cfg.model, cpu) and lexical_layer(cfg.model, gpu)
    for value, expected in (("true", True), ("false", False)):
        m = load_config([f"model.lexical={value}"]).model
        assert lexical_layer(m, cpu) is expected and lexical_layer(m, gpu) is expected
    with pytest.raises(
        TicketMLError, match="model.lexical='sometimes' must be true, false or auto"
    ):
        lexical_layer(load_config(["model.lexical=sometimes"]).model, cpu)
