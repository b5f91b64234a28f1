"""The training budget: a short run on the CPU, train-until-it-stops on a GPU, one policy for
train and tune, and a wall-clock cap that still leaves a model."""

import json

import pytest
from omegaconf import OmegaConf

from tests.conftest import run_cli, tiny_overrides
from ticketml.errors import TicketMLError
from ticketml.training.runtime import budget, head_tokens, learning_rates


def _train(**values):
    base = {"max_epochs": "auto", "early_stopping_patience": "auto", "max_minutes": "auto"}
    return OmegaConf.create({**base, **values})


def test_auto_budget_is_short_on_the_cpu_and_patient_on_a_gpu():
    assert budget(_train(), on_gpu=False) == (6, 2, None)
    assert budget(_train(), on_gpu=True) == (60, 6, 10.0)
    assert budget(_train(max_epochs=3, early_stopping_patience=5), on_gpu=True) == (3, 5, 10.0)
    # tune.max_epochs (an int or auto) replaces train.max_epochs, under the same policy
    assert budget(_train(max_epochs=3), on_gpu=True, max_epochs="auto") == (60, 6, 10.0)
    assert budget(_train(max_minutes=1.5), on_gpu=False) == (6, 2, 1.5)
    assert budget(_train(max_minutes=None), on_gpu=True) == (60, 6, None)
    for bad in ({"max_epochs": 0}, {"max_epochs": "1.5"}, {"early_stopping_patience": "x"}):
        with pytest.raises(TicketMLError, match="positive whole number or auto"):
            budget(_train(**bad), on_gpu=False)
    for bad in (0, "soon"):
        with pytest.raises(TicketMLError, match="max_minutes"):
            budget(_train(max_minutes=bad), on_gpu=False)


def test_auto_learning_rates_are_the_encoders_own_for_the_machine():
    from ticketml.config import load_config
    from ticketml.encoder import ENGLISH_ENCODER, MULTILINGUAL_ENCODER

    cfg = load_config([])  # model=auto: MiniLM's settings
    assert learning_rates(cfg, ENGLISH_ENCODER, on_gpu=False) == (1e-4, None)
    assert learning_rates(cfg, ENGLISH_ENCODER, on_gpu=True) == (5e-5, 1e-3)
    # auto chose e5 (a GPU, tickets not in English): e5's own rates, not MiniLM's
    assert learning_rates(cfg, MULTILINGUAL_ENCODER, on_gpu=True) == (1e-4, None)
    e5 = load_config(["model=multilingual_e5_small"])
    assert learning_rates(e5, MULTILINGUAL_ENCODER, on_gpu=True) == (1e-4, None)
    # a number set on the command line wins over auto, on either machine
    set_rates = load_config(["train.learning_rate=3e-4", "train.head_learning_rate=null"])
    assert learning_rates(set_rates, MULTILINGUAL_ENCODER, on_gpu=True) == (3e-4, None)
    overridden = load_config(["model.gpu_learning_rate=2e-5"])  # MiniLM's, overrides kept
    assert learning_rates(overridden, ENGLISH_ENCODER, on_gpu=True) == (2e-5, 1e-3)
    with pytest.raises(TicketMLError, match="numbers or auto"):
        learning_rates(load_config(["train.learning_rate=fast"]), ENGLISH_ENCODER, False)


def test_head_tail_keeps_half_of_max_length_by_default():
    model = OmegaConf.create({"truncation": "head_tail", "head_tokens": "auto", "max_length": 512})
    assert head_tokens(model) == 256
    model.truncation = "head"
    assert head_tokens(model) == 0
    model.truncation, model.head_tokens = "head_tail", 600
    with pytest.raises(TicketMLError, match="head_tokens"):
        head_tokens(model)


def test_a_time_cap_ends_training_and_keeps_a_model(data_workdir, tiny_encoder):
    overrides = [*tiny_overrides(tiny_encoder, epochs=50), "train.max_minutes=0.0001"]
    assert run_cli("train", *overrides) == 0
    summary = json.loads((data_workdir / "artifacts/metrics/multitask.json").read_text())["summary"]
    assert summary["max_epochs"] == 50 and summary["max_minutes"] == 0.0001
    assert summary["epochs"] <= 1
    assert (data_workdir / "checkpoints/best.ckpt").stat().st_size > 10_000


def _learning_rates(steps: int, epochs: int, **schedule) -> list[float]:
    from types import SimpleNamespace

    import torch

    from ticketml.training.module import adamw_linear

    param = torch.nn.Parameter(torch.zeros(1))
    trainer = SimpleNamespace(estimated_stepping_batches=steps, max_epochs=epochs)
    module = SimpleNamespace(device=torch.device("cpu"), trainer=trainer)
    config = adamw_linear(
        module, [{"params": [param], "lr": 1.0, "weight_decay": 0.0}], 0.1, **schedule
    )
    optimizer, scheduler = config["optimizer"], config["lr_scheduler"]["scheduler"]
    rates = []
    for _ in range(steps):
        rates.append(scheduler.get_last_lr()[0])
        optimizer.step()
        scheduler.step()
    return rates


def test_the_warm_up_follows_the_cap_unless_given_in_epochs_and_constant_keeps_the_peak():
    # the 60-epoch GPU cap, 10 steps an epoch: warmup_ratio 0.1 warms up over 6 epochs
    by_ratio = _learning_rates(600, 60)
    assert by_ratio[59] < 1.0 and by_ratio[60] == pytest.approx(1.0) and by_ratio[-1] < 0.01
    one_epoch = _learning_rates(600, 60, warmup_epochs=1.0)
    assert one_epoch[9] < 1.0 and one_epoch[10] == pytest.approx(1.0, abs=0.01)
    assert one_epoch[300] == pytest.approx((600 - 300) / (600 - 10))  # then linear to the cap
    flat = _learning_rates(600, 60, warmup_epochs=1.0, schedule="constant")
    assert flat[10] == flat[-1] == pytest.approx(1.0)


def test_a_fit_without_a_checkpoint_folder_returns_the_best_epoch_not_the_last(
    data_workdir, tiny_encoder
):
    """Benchmarks call train_model without a checkpoint folder: they must score the model
    `ticketml train` ships (the best validation epoch), not the weights after the last one."""
    import torch
    from lightning.pytorch.callbacks import Callback

    from ticketml.config import load_config
    from ticketml.training.train import best_epoch, evaluate, train_model

    class SpoilAfterFirstEpoch(Callback):
        """From epoch 2 on, each head predicts its last class on every row when validated."""

        def on_validation_start(self, trainer, pl_module):
            if trainer.current_epoch >= 1:
                with torch.no_grad():
                    for head in pl_module.heads.values():
                        head.weight.zero_()
                        head.bias.copy_(torch.arange(len(head.bias), dtype=head.bias.dtype))

    cfg = load_config([*tiny_overrides(tiny_encoder, epochs=3), "train.early_stopping_patience=5"])
    spoil = SpoilAfterFirstEpoch()
    model, dm, history, best = train_model(cfg, extra_callbacks=[spoil])
    assert best is None  # no checkpoint file: the best weights came from memory
    series = history.series(cfg.train.monitor)
    assert len(series) == 3 and best_epoch(history, cfg.train.monitor) == 1
    assert series[0] > series[-1]  # the last epoch is worse than the first
    metrics, _ = evaluate(model, dm)
    got = (metrics["val"]["topic"]["macro_f1"] + metrics["val"]["priority"]["macro_f1"]) / 2
    assert got == pytest.approx(series[0], abs=1e-6)


def test_best_weights_keeps_the_k_best_epochs_and_the_earlier_on_ties():
    from types import SimpleNamespace

    import torch

    from ticketml.training.train import BestWeights, average_states

    kept = BestWeights("val/mean_macro_f1", keep=2)
    module = torch.nn.Linear(2, 1)
    for epoch, score in enumerate([0.5, 0.7, 0.6, 0.7, 0.4]):
        with torch.no_grad():
            module.weight.fill_(epoch)
        trainer = SimpleNamespace(
            callback_metrics={"val/mean_macro_f1": torch.tensor(score)},
            sanity_checking=False,
            current_epoch=epoch,
        )
        kept.on_validation_end(trainer, module)
    assert [(round(s, 3), e) for s, e, _ in kept.kept] == [(0.7, 2), (0.7, 4)]
    assert kept.best == pytest.approx(0.7) and float(kept.state["weight"][0, 0]) == 1.0
    soup = average_states([state for _, _, state in kept.kept])
    assert soup["weight"].tolist() == [[2.0, 2.0]]  # epochs 2 and 4 (weights 1 and 3)
    ids = {"ids": torch.tensor([1, 2])}
    assert average_states([ids, {"ids": torch.tensor([5, 6])}])["ids"].tolist() == [1, 2]


def test_average_top_k_ships_the_average_only_where_it_wins_on_val(data_workdir, tiny_encoder):
    import torch

    from ticketml.config import load_config
    from ticketml.training.train import train_model, val_score

    overrides = [*tiny_overrides(tiny_encoder, epochs=4), "train.early_stopping_patience=5"]
    cfg = load_config([*overrides, "train.average_top_k=3"])
    model, dm, history, best = train_model(cfg, checkpoint_dir=str(data_workdir / "ckpt"))
    averaged = history.averaged
    assert len(averaged["epochs"]) == 3 and len(set(averaged["epochs"])) == 3
    assert averaged["used"] == (averaged["val_average"] >= averaged["val_best_epoch"])
    assert val_score(model, dm, cfg.train.monitor) == pytest.approx(
        max(averaged["val_average"], averaged["val_best_epoch"])
    )
    saved = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
    ours = {k: v.cpu() for k, v in model.state_dict().items()}
    assert all(torch.equal(saved[k], ours[k]) for k in ours)  # the file is the model returned
    assert best.endswith("multitask-averaged.ckpt") == averaged["used"]
    assert all(1 <= e <= 4 for e in averaged["epochs"])


def test_average_top_k_rejects_what_is_not_a_whole_number_from_one(data_workdir, tiny_encoder):
    from ticketml.config import load_config
    from ticketml.training.train import train_model

    for bad in ("1.5", "true"):  # the typed config refuses them when it loads
        with pytest.raises(TicketMLError, match="average_top_k"):
            load_config([f"train.average_top_k={bad}"])
    cfg = load_config([*tiny_overrides(tiny_encoder), "train.average_top_k=0"])
    with pytest.raises(TicketMLError, match="average_top_k=0 must be a whole number >= 1"):
        train_model(cfg)


def test_layer_decay_trains_each_encoder_layer_at_a_fraction_of_the_one_above(tiny_encoder):
    from ticketml.training.module import MultiTaskClassifier, decay_groups, layer_groups

    encoder = MultiTaskClassifier(tiny_encoder, {"topic": 3, "priority": 2}).encoder  # 2 layers
    groups = layer_groups(encoder, 1e-3, 0.01, decay=0.5)
    rate = {id(p): g["lr"] for g in groups for p in g["params"]}
    decay = {id(p): g["weight_decay"] for g in groups for p in g["params"]}
    named = dict(encoder.named_parameters())
    assert sum(len(g["params"]) for g in groups) == len(rate) == len(named)  # each once
    expected = {
        "embeddings.word_embeddings.weight": 2.5e-4,
        "encoder.layer.0.attention.self.query.weight": 5e-4,
        "encoder.layer.1.output.dense.weight": 1e-3,
    }
    assert {n: rate[id(named[n])] for n in expected} == pytest.approx(expected)
    assert decay[id(named["encoder.layer.0.output.LayerNorm.weight"])] == 0.0
    assert decay[id(named["encoder.layer.0.output.dense.weight"])] == 0.01
    # 1: one rate, the groups of before
    same = layer_groups(encoder, 1e-3, 0.01, decay=1.0)
    assert [[id(p) for p in g["params"]] for g in same] == [
        [id(p) for p in g["params"]] for g in decay_groups(encoder.named_parameters(), 1e-3, 0.01)
    ]
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="layer_decay"):
            MultiTaskClassifier(tiny_encoder, {"topic": 3}, layer_decay=bad)
