import json

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
    for model in report["models"].values():
        for task in ("topic", "priority"):
            assert 0 <= model[task]["ece"] <= 1 and model[task]["per_class_f1"]
    assert set(report["by_language"]) == {"en", "ru"}
    assert (
        sum(m["hybrid"]["topic"]["n"] for m in report["by_language"].values())
        == report["test_rows"]
    )
    md = (export_workdir / "artifacts/report.md").read_text()
    assert "| all (" in md and "hybrid" in md and "| ru (" in md and "Bayes classifier" in md
