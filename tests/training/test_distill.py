"""train.distill_weight: the TF-IDF baseline's out-of-fold probabilities as soft targets."""

import numpy as np
import pytest
import torch
from torch import nn

from tests.conftest import tiny_overrides
from ticketml import TASKS
from ticketml.baseline import fit_baseline, out_of_fold_probs
from ticketml.config import load_config
from ticketml.contract import load_label_maps, load_splits
from ticketml.data.schema import encode_labels
from ticketml.errors import ConfigError
from ticketml.training.train import build_datamodule, build_model


def test_out_of_fold_probabilities_come_from_heads_that_never_saw_the_row(data_workdir):
    cfg = load_config(["baseline.max_features=3000"])
    train, maps = load_splits(cfg)["train"], load_label_maps(cfg)
    oof = out_of_fold_probs(train, maps, cfg.baseline, folds=3, seed=0)
    labels = encode_labels(train, maps)
    in_sample = fit_baseline(train, maps, cfg.baseline).predict_proba(train["text"].tolist())
    for task in TASKS:
        y = labels[task]
        keep = y >= 0
        assert oof[task].shape == (len(train), len(maps[task]))
        np.testing.assert_allclose(oof[task].sum(1), 1.0, atol=1e-9)
        true_oof = oof[task][keep, y[keep]].mean()
        true_in = in_sample[task][keep, y[keep]].mean()
        # a head that learnt the row is surer of its label than one that did not
        assert true_oof < true_in - 0.05, (task, true_oof, true_in)
        # ... yet the held-out heads still know the task (better than chance)
        accuracy = (oof[task][keep].argmax(1) == y[keep]).mean()
        assert accuracy > 1.5 / len(maps[task]), (task, accuracy)


def test_the_train_batches_carry_the_teacher_and_the_loss_mixes_it_in(data_workdir, tiny_encoder):
    cfg = load_config(
        [
            *tiny_overrides(tiny_encoder),
            "train.distill_weight=0.4",
            "train.distill_folds=3",
            "baseline.max_features=3000",
        ]
    )
    dm = build_datamodule(cfg)
    model = build_model(cfg, dm)
    batch = next(iter(dm.train_dataloader()))
    expected = out_of_fold_probs(
        load_splits(cfg)["train"], dm.label_maps, cfg.baseline, folds=3, seed=int(cfg.seed)
    )
    rows = batch["index"].numpy()
    for task in TASKS:
        np.testing.assert_allclose(
            batch[f"{task}_teacher"].numpy(), expected[task][rows], rtol=1e-5, atol=1e-7
        )
    assert "topic_teacher" not in next(iter(dm.val_dataloader()))  # validation: labels only

    logits = {t: torch.randn(len(rows), len(dm.label_maps[t])) for t in TASKS}
    total, parts = model._loss(logits, batch)
    for task in TASKS:
        y, z = batch[task], logits[task]
        hard = nn.functional.cross_entropy(z, y.clamp(min=0), reduction="none")
        soft = -(batch[f"{task}_teacher"] * torch.log_softmax(z, -1)).sum(-1)
        w = (y >= 0).float() * getattr(model, f"class_weight_{task}")[y.clamp(min=0)]
        want = ((0.6 * hard + 0.4 * soft) * w).sum() / w.sum()
        assert parts[task].item() == pytest.approx(want.item(), rel=1e-5)


def test_distill_weight_outside_zero_to_one_is_a_config_error(data_workdir, tiny_encoder):
    cfg = load_config([*tiny_overrides(tiny_encoder), "train.distill_weight=1.0"])
    with pytest.raises(ConfigError, match="distill_weight"):
        build_datamodule(cfg)
