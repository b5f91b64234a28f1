"""train.compile: the encoder is compiled by region (its repeated layers), for training steps only."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch._dynamo.utils import counters

from ticketml.training.module import MultiTaskClassifier, compile_encoder, repeated_blocks


def batch(rows: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(1000, 2000, (rows, width))
    mask = torch.ones_like(ids)
    mask[0, width // 2 :] = 0
    return ids, mask


def test_one_graph_serves_every_layer_and_width_and_evaluation_stays_eager(tiny_encoder):
    torch._dynamo.reset()
    counters.clear()
    torch.manual_seed(0)
    model = MultiTaskClassifier(tiny_encoder, {"topic": 3, "priority": 2})
    eager = copy.deepcopy(model).eval()
    names = list(model.state_dict())
    layers = model.encoder.encoder.layer
    assert repeated_blocks(model.encoder) is layers and len(layers) == 2

    # "eager" backend: Dynamo traces as with Inductor, without a C++ build in the test
    assert compile_encoder(model.encoder, backend="eager") == "blocks"
    assert list(model.state_dict()) == names  # checkpoints and export see the same names
    assert all(layer._compiled_call_impl is not None for layer in layers)
    assert model.encoder._compiled_call_impl is None

    model.train()
    for rows, width in ((4, 16), (4, 40), (3, 24)):  # new widths and a short last batch
        ids, mask = batch(rows, width)
        out = model(ids, mask)
        (out["topic"].sum() + out["priority"].sum()).backward()
    assert counters["stats"]["unique_graphs"] == 1  # both layers, every width: one graph
    captured = counters["stats"]["calls_captured"]
    assert captured > 0

    model.eval()
    ids, mask = batch(5, 33)
    with torch.no_grad():
        got, want = model(ids, mask), eager(ids, mask)
    assert counters["stats"]["calls_captured"] == captured  # validation compiled nothing
    assert counters["stats"]["unique_graphs"] == 1
    assert torch.equal(got["topic"], want["topic"])
    assert torch.equal(got["priority"], want["priority"])


def test_an_encoder_without_a_stack_of_layers_is_compiled_whole():
    torch._dynamo.reset()
    encoder = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    assert repeated_blocks(encoder) is None
    assert compile_encoder(encoder, backend="eager") == "whole"
    assert encoder._compiled_call_impl is not None
    assert encoder(torch.ones(3, 4)).shape == (3, 2)
