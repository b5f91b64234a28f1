"""An export where one task's label is missing on some rows (the Jira sample's issue type):
the rows stay, train the other task, and every fit and score leaves them out of the task."""

import json

import numpy as np
import pandas as pd
import torch

from tests.conftest import FIXTURES, run_cli, tiny_overrides
from ticketml.data.schema import encode_labels
from ticketml.metrics import task_metrics

EXPORT = FIXTURES / "issue_tracker_export.csv"  # 72 issues; project GAMMA's 24 have no type


def test_preprocess_keeps_rows_without_one_label_and_reports_them(workdir, capsys):
    assert run_cli("data", "data=jira_agile", f"data.path={EXPORT}") == 0
    out = capsys.readouterr().out
    assert "24 rows without a priority label (they train the other task only)" in out
    splits = {
        s: pd.read_parquet(workdir / f"data/processed/{s}.parquet")
        for s in ("train", "val", "test")
    }
    assert sum(len(s) for s in splits.values()) == 72
    maps = json.loads((workdir / "artifacts/label_maps.json").read_text())
    assert maps == {
        "topic": ["alpha", "beta", "gamma"],
        "priority": ["bug", "improvement", "story", "task"],
    }
    report = json.loads((workdir / "artifacts/data_report.json").read_text())
    assert sum(m["priority"] for m in report["missing_labels"].values()) == 24
    assert sum(m["topic"] for m in report["missing_labels"].values()) == 0
    assert "" not in report["class_counts"]["train"]["priority"]
    test = splits["test"]
    labels = encode_labels(test, maps)
    assert (labels["priority"] == -1).sum() == (test["priority"] == "").sum() > 0
    assert (labels["priority"][test["topic"].to_numpy() == "gamma"] == -1).all()


def test_a_row_without_any_label_is_dropped(workdir):
    raw = pd.read_csv(EXPORT, dtype=str, keep_default_na=False)
    raw.loc[raw["project"] == "GAMMA", "project"] = ""  # GAMMA's rows now have no label at all
    raw.to_csv(workdir / "export.csv", index=False)
    assert run_cli("data", "data=jira_agile", "data.path=export.csv") == 0
    report = json.loads((workdir / "artifacts/data_report.json").read_text())
    assert report["rows_out"] == 48 and report["dropped_empty"] == 24


def test_the_loss_and_the_scores_leave_unlabelled_rows_out(tiny_encoder):
    from ticketml.training.module import MultiTaskClassifier

    model = MultiTaskClassifier(tiny_encoder, {"topic": 3, "priority": 2})
    logits = {"topic": torch.randn(4, 3), "priority": torch.randn(4, 2, requires_grad=True)}
    batch = {"topic": torch.tensor([0, 1, 2, 0]), "priority": torch.tensor([-1, -1, -1, -1])}
    total, parts = model._loss(logits, batch)
    assert torch.isfinite(total) and parts["priority"].item() == 0.0
    total.backward()
    assert logits["priority"].grad.abs().sum().item() == 0.0  # nothing learnt from no label
    batch["priority"] = torch.tensor([1, -1, 0, -1])
    _, parts = model._loss(logits, batch)
    rows = torch.tensor([0, 2])
    expected = torch.nn.functional.cross_entropy(logits["priority"][rows], batch["priority"][rows])
    assert abs(parts["priority"].item() - expected.item()) < 1e-6
    metrics = task_metrics(np.array([1, -1, 0, -1]), np.array([1, 0, 1, 0]), ["a", "b"])
    assert metrics["n"] == 2 and metrics["accuracy"] == 0.5


def test_baseline_and_train_fit_each_task_on_its_labelled_rows(workdir, tiny_encoder):
    assert run_cli("data", "data=jira_agile", f"data.path={EXPORT}") == 0
    assert run_cli("baseline", "baseline.max_features=3000") == 0
    baseline = json.loads((workdir / "artifacts/metrics/baseline.json").read_text())
    test = pd.read_parquet(workdir / "data/processed/test.parquet")
    assert (
        sum(map(sum, baseline["test"]["priority"]["confusion_matrix"]))
        == (test["priority"] != "").sum()
    )
    assert sum(map(sum, baseline["test"]["topic"]["confusion_matrix"])) == len(test)
    assert baseline["test"]["topic"]["accuracy"] > 0.9  # the project is in every title
    assert run_cli("train", *tiny_overrides(tiny_encoder, epochs=1)) == 0
    metrics = json.loads((workdir / "artifacts/metrics/multitask.json").read_text())
    assert metrics["test"]["priority"]["n"] == (test["priority"] != "").sum()
    assert metrics["test"]["topic"]["n"] == len(test)
    assert np.isfinite(metrics["test"]["priority"]["nll"])
