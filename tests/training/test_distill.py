"""The TF-IDF baseline's out-of-fold probabilities in training: soft targets
(train.distill_weight) or the other expert of a product (train.baseline_product)."""

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


def teacher_setup(encoder: str, option: str, folds: int):
    """(cfg, datamodule, model) of the tiny model trained with the baseline as teacher."""
    cfg = load_config(
        [
            *tiny_overrides(encoder),
            option,
            f"train.teacher_folds={folds}",
            "baseline.max_features=3000",
        ]
    )
    dm = build_datamodule(cfg)
    return cfg, dm, build_model(cfg, dm)


def test_out_of_fold_probabilities_come_from_heads_that_never_saw_the_row(data_workdir):
    cfg = load_config(["baseline.max_features=3000"])
    train, maps = load_splits(cfg)["train"], load_label_maps(cfg)
    val = load_splits(cfg)["val"]
    probs = out_of_fold_probs(train, maps, cfg.baseline, folds=3, seed=0, held={"val": val})
    oof = probs["train"]
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
        # val: the fold heads' mean, a distribution per row, close to the full baseline's
        full = fit_baseline(train, maps, cfg.baseline).predict_proba(val["text"].tolist())[task]
        assert probs["val"][task].shape == full.shape
        np.testing.assert_allclose(probs["val"][task].sum(1), 1.0, atol=1e-9)
        assert (probs["val"][task].argmax(1) == full.argmax(1)).mean() > 0.8


def test_the_train_batches_carry_the_teacher_and_the_loss_mixes_it_in(data_workdir, tiny_encoder):
    cfg, dm, model = teacher_setup(tiny_encoder, "train.distill_weight=0.4", folds=3)
    batch = next(iter(dm.train_dataloader()))
    splits = load_splits(cfg)
    expected = out_of_fold_probs(
        splits["train"], dm.label_maps, cfg.baseline, 3, int(cfg.seed), {"val": splits["val"]}
    )
    rows = batch["index"].numpy()
    val_batch = next(iter(dm.val_dataloader()))
    for task in TASKS:
        np.testing.assert_allclose(
            batch[f"{task}_teacher"].numpy(), expected["train"][task][rows], rtol=1e-5, atol=1e-7
        )
        np.testing.assert_allclose(
            val_batch[f"{task}_teacher"].numpy(),
            expected["val"][task][val_batch["index"].numpy()],
            rtol=1e-5,
            atol=1e-7,
        )

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
    both = ["train.distill_weight=0.5", "train.baseline_product=true"]
    with pytest.raises(ConfigError, match="one teacher use at a time"):
        build_datamodule(load_config([*tiny_overrides(tiny_encoder), *both]))


def test_a_product_trained_transformer_learns_and_validates_inside_the_product(
    data_workdir, tiny_encoder
):
    _, dm, model = teacher_setup(tiny_encoder, "train.baseline_product=true", folds=2)
    for loader in (dm.train_dataloader(), dm.val_dataloader()):
        batch = next(iter(loader))
        logits = {t: torch.randn(len(batch["index"]), len(dm.label_maps[t])) for t in TASKS}
        joint = model.joint(logits, batch)
        for task in TASKS:
            want = logits[task] + torch.log(batch[f"{task}_teacher"].clamp(min=1e-12))
            torch.testing.assert_close(joint[task], want)
        # the loss reads the product: a transformer that says nothing scores the baseline's loss
        silent = {t: torch.zeros_like(v) for t, v in logits.items()}
        _, parts = model._loss(model.joint(silent, batch), batch)
        y = batch["topic"]
        keep = y >= 0
        w = model.class_weight_topic[y[keep]]
        nll = -torch.log(batch["topic_teacher"][keep, y[keep]].clamp(min=1e-12))
        assert parts["topic"].item() == pytest.approx(((nll * w).sum() / w.sum()).item(), rel=1e-4)
