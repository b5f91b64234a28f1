"""model.members: fine-tuned copies of the encoder, each with its own heads trained on its own
loss, served in the one ONNX graph as their product (the mean of their log-probabilities)."""

import numpy as np
import onnxruntime as ort
import pytest
import torch

from tests.conftest import first_val_batch, run_cli, tiny_overrides


def batch_of(tokens: int = 12, rows: int = 4) -> dict:
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 2000, (rows, tokens), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "topic": torch.tensor([0, 1, 2, 1]),
        "priority": torch.tensor([1, 0, -1, 1]),  # a row without a priority label
    }


def test_each_member_learns_from_its_own_loss_and_is_served_in_the_product(tiny_encoder):
    from ticketml.training.module import MultiTaskClassifier, ensemble

    one = MultiTaskClassifier(tiny_encoder, {"topic": 3, "priority": 2})
    model = MultiTaskClassifier(tiny_encoder, {"topic": 3, "priority": 2}, dropout=0.0, members=3)
    # the first member keeps the one-member names: an older checkpoint loads as it did
    assert set(one.state_dict()) < set(model.state_dict())
    assert {k.split(".")[1] for k in model.state_dict() if k.startswith("others.")} == {"0", "1"}
    batch = batch_of()
    model.log = lambda *args, **kwargs: None  # no trainer: nothing to log to
    model.eval()  # the encoders' own dropout off: both passes see the same function
    model.training_step(batch, 0).backward()
    together = {n: p.grad.clone() for n, p in model.named_parameters()}
    # the third member's gradient is what its own loss alone gives: the others add nothing
    model.zero_grad()
    inputs = batch["input_ids"], batch["attention_mask"]
    model._loss(model.member_logits(*inputs)[2], batch)[0].backward()
    third = [n for n in together if n.startswith("others.1.")]
    assert third and all(torch.allclose(together[n], model.get_parameter(n).grad) for n in third)
    assert all(model.get_parameter(n).grad is None for n in together if n.startswith("heads."))
    # served: the members' mean log-probability, which differs from each member's own
    with torch.no_grad():
        members = model.member_logits(*inputs)
        served = model(*inputs)
    for task in ("topic", "priority"):
        logp = torch.stack([m[task].log_softmax(-1) for m in members])
        assert torch.allclose(served[task], logp.mean(0), atol=1e-6)
        assert not torch.allclose(logp[0], logp[1], atol=1e-3)  # heads of their own
    assert ensemble(members[:1]) is members[0]  # one member: its logits as they are


@pytest.mark.slow
def test_members_train_export_and_serve_as_one_graph(data_workdir, tiny_encoder):
    from pyfunc.core import TicketClassifier
    from ticketml.config import load_config
    from ticketml.encoder import load_encoder
    from ticketml.export import load_checkpoint

    overrides = [*tiny_overrides(tiny_encoder, epochs=2), "model.members=2", "model.lexical=true"]
    assert run_cli("baseline", "baseline.max_features=3000") == 0
    assert run_cli("train", *overrides) == 0 and run_cli("export_onnx", *overrides) == 0
    model = load_checkpoint(load_config(overrides)).eval()
    assert model.hparams.members == 2 and len(model.others) == 1
    # both members trained: each encoder moved away from the weights it started from, apart
    start = load_encoder(tiny_encoder).state_dict()
    for encoder, _ in model.pairs():
        moved = [not torch.equal(v, start[k]) for k, v in encoder.state_dict().items()]
        assert any(moved), "a member's encoder did not train"
    w0 = model.encoder.encoder.layer[1].output.dense.weight
    assert not torch.allclose(w0, model.others[0].encoder.encoder.layer[1].output.dense.weight)

    dm, val = first_val_batch(overrides)
    ids, mask = val["input_ids"], val["attention_mask"]
    with torch.no_grad():
        deep, lexical = model.experts(ids, mask)
        served = model(ids, mask)
        members = model.member_logits(ids, mask)
    for task in ("topic", "priority"):
        logp = torch.stack([m[task].log_softmax(-1) for m in members]).mean(0)
        assert torch.allclose(deep[task], logp, atol=1e-6)  # the encoder expert: the members'
        a = float(getattr(model, f"expert_weight_{task}"))  # ... in the token layer's product
        expected = a * deep[task].log_softmax(-1) + (1 - a) * lexical[task].log_softmax(-1)
        assert torch.allclose(served[task], expected, atol=1e-5)
    # one graph holds both members: ONNX Runtime gives what torch gives, and the serving core
    # (every serving path's) runs it on the tickets' texts
    session = ort.InferenceSession(str(data_workdir / "artifacts/model.onnx"))
    topic, _ = session.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})
    assert np.abs(topic - served["topic"].numpy()).max() <= 1e-4
    core = TicketClassifier.from_dir(data_workdir / "artifacts", int8=False)
    texts = dm.frames["val"]["text"].iloc[val["index"].numpy()].tolist()
    assert np.abs(core.run_logits(texts)["topic"] - served["topic"].numpy()).max() <= 1e-4


@pytest.mark.parametrize("bad", ["0", "two"])
def test_members_must_be_a_whole_number_of_one_or_more(bad, data_workdir, tiny_encoder, capsys):
    overrides = [*tiny_overrides(tiny_encoder, epochs=1), f"model.members={bad}"]
    assert run_cli("train", *overrides) != 0
    err = capsys.readouterr().err
    assert "ERROR: " in err and f"model.members={bad}" in err and "Traceback" not in err, err
    assert not list((data_workdir / "checkpoints").glob("*.ckpt"))  # nothing trained
