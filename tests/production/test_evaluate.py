import json

import pytest

from tests.conftest import run_cli


def test_evaluate_reports_three_models_per_task_and_language(export_workdir):
    assert run_cli("evaluate") == 0
    report = json.loads((export_workdir / "artifacts/metrics/report.json").read_text())
    assert set(report["models"]) == {"baseline", "transformer", "hybrid", "ceiling"}
    # synthetic data: the generator's Bayes classifier is the reference row, above every model
    ceiling = report["models"]["ceiling"]["topic"]["accuracy"]
    assert ceiling > 0.9
    assert all(m["topic"]["accuracy"] <= ceiling for m in report["models"].values())
    baseline = json.loads((export_workdir / "artifacts/metrics/baseline.json").read_text())
    # the exported TF-IDF arrays score exactly like the sklearn baseline
    assert (
        report["models"]["baseline"]["topic"]["macro_f1"] == baseline["test"]["topic"]["macro_f1"]
    )
    # served = evaluated: the hybrid evaluate scores through the exported bundle on the raw rows
    # is the one export fitted and scored (same rows, same labels)
    hybrid = json.loads((export_workdir / "artifacts/metrics/hybrid.json").read_text())
    for task in ("topic", "priority"):
        served, exported = report["models"]["hybrid"][task], hybrid["test"][task]
        assert served["macro_f1"] == pytest.approx(exported["macro_f1"], abs=1e-9)
        assert served["ece"] == pytest.approx(exported["ece"], abs=1e-6)
        per_class = list(served["per_class_f1"].values())
        assert served["macro_f1"] == pytest.approx(sum(per_class) / len(per_class), abs=1e-12)
    assert set(report["by_language"]) == {"en", "ru"}
    assert (
        sum(m["hybrid"]["topic"]["n"] for m in report["by_language"].values())
        == report["test_rows"]
    )
    md = (export_workdir / "artifacts/report.md").read_text()
    assert "| all (" in md and "hybrid" in md and "| ru (" in md and "Bayes classifier" in md
