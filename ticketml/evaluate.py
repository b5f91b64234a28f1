"""evaluate: baseline vs transformer vs hybrid on the test split, per task and per language.

Uses the exported artifacts (the serving core: ONNX Runtime + the exported TF-IDF arrays), so it
scores exactly what would be served. Writes artifacts/metrics/report.json and artifacts/report.md.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from ticketml import TASKS
from ticketml.data.schema import encode_labels, served_texts
from ticketml.data.sources import generated
from ticketml.io import atomic_path, write_json
from ticketml.metrics import compact
from ticketml.metrics import score as metrics_score
from ticketml.predictor import graph_choice

MIN_LANGUAGE_ROWS = 20


def score(probs: dict, labels: dict, label_maps: dict, decisions: dict) -> dict:
    """ticketml.metrics.score in the report's shape (ticketml.metrics.compact)."""
    return compact(metrics_score(probs, labels, label_maps, decisions))


def build_report(
    classifier, test: pd.DataFrame, ceiling: dict[str, np.ndarray] | None = None
) -> dict:
    """Scores of the served models; `ceiling` adds a reference row (the synthetic data's Bayes
    posterior, see ticketml.data.synthetic.ceiling_proba)."""
    label_maps = classifier.label_maps
    labels = encode_labels(test, label_maps)
    probs = classifier.components(served_texts(test))
    decisions = {k: classifier.decisions(k, v) for k, v in probs.items()}
    if ceiling is not None:
        probs["ceiling"] = ceiling
        decisions["ceiling"] = {t: p.argmax(1) for t, p in ceiling.items()}
    served = classifier.served
    processed = classifier.predict_proba(test["text"].tolist())  # what evaluate scored before
    on_processed = score(processed, labels, label_maps, classifier.decisions(served, processed))
    on_raw = score(probs[served], labels, label_maps, decisions[served])
    report = {
        "test_rows": len(test),
        "served_model": served,
        "served_raw_vs_processed_rows": {
            t: {
                "raw_rows_macro_f1": on_raw[t]["macro_f1"],
                "processed_rows_macro_f1": on_processed[t]["macro_f1"],
            }
            for t in TASKS
        },
        "models": {k: score(v, labels, label_maps, decisions[k]) for k, v in probs.items()},
        "hybrid": classifier.hybrid_summary,
    }
    if "language" in test.columns:
        report["by_language"] = {}
        for lang, count in test["language"].value_counts().items():
            if count < MIN_LANGUAGE_ROWS:
                continue
            mask = (test["language"] == lang).to_numpy()
            sub = {t: labels[t][mask] for t in TASKS}
            report["by_language"][lang] = {
                k: score(
                    {t: v[t][mask] for t in TASKS},
                    sub,
                    label_maps,
                    {t: decisions[k][t][mask] for t in TASKS},
                )
                for k, v in probs.items()
            }
    return report


def to_markdown(report: dict) -> str:
    lines = [
        f"# ticketml evaluation ({report['test_rows']} test tickets)",
        "",
        "| rows | model | topic acc | topic macro-F1 | topic ECE | priority acc | priority macro-F1 | priority ECE |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    groups = [("all", report["models"]), *report.get("by_language", {}).items()]
    for group, models in groups:
        for name, m in models.items():
            cells = [f"{m[t][k]:.3f}" for t in TASKS for k in ("accuracy", "macro_f1", "ece")]
            lines.append(f"| {group} ({m['topic']['n']}) | {name} | " + " | ".join(cells) + " |")
    if "ceiling" in report["models"]:
        lines += [
            "",
            "`ceiling`: the synthetic generator's Bayes classifier, which knows what each ticket "
            "was written from: the best any model can expect on this data.",
        ]
    lines += ["", "Per-class F1 (all test rows):", ""]
    for t in TASKS:
        names = list(next(iter(report["models"].values()))[t]["per_class_f1"])
        lines += [f"| {t} | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
        for model, m in report["models"].items():
            lines.append(
                f"| {model} | " + " | ".join(f"{m[t]['per_class_f1'][n]:.3f}" for n in names) + " |"
            )
        lines.append("")
    return "\n".join(lines)


def served_classifier(cfg: DictConfig, artifacts: Path):
    """(the exported model as it is served, the score store it reads back): the logits
    export_onnx computed for the test rows, and the baseline stage's probabilities."""
    from pyfunc.core import TicketClassifier
    from ticketml.baseline import attach_stores

    try:
        classifier = TicketClassifier.from_dir(artifacts, int8=graph_choice(cfg))
    except FileNotFoundError as exc:
        from ticketml.errors import ModelError

        raise ModelError(str(exc)) from exc
    return classifier, attach_stores(classifier, artifacts)


def run_evaluate(cfg: DictConfig) -> dict:
    from ticketml.contract import load_splits
    from ticketml.tracking import stage_run

    artifacts = Path(cfg.paths.artifacts_dir)
    classifier, store = served_classifier(cfg, artifacts)
    test = load_splits(cfg)["test"]
    ceiling = None
    if generated(cfg):
        from ticketml.data.synthetic import ceiling_proba

        ceiling = ceiling_proba(cfg, test["text"].tolist(), classifier.label_maps)
        if ceiling is None:
            print("no ceiling row: the test rows are not this config's synthetic data")
    with stage_run(cfg, "evaluate") as stage:  # the run spans the scoring
        stage.inputs(cfg, ("test",), {"test": test})
        print(
            f"evaluate: scoring {len(test)} raw test tickets through the exported model ...",
            flush=True,
        )
        started = time.perf_counter()
        report = build_report(classifier, test, ceiling)
        print(
            f"evaluate: done in {time.perf_counter() - started:.1f} s ({store.hits} texts' logits "
            f"read back from export_onnx, {store.misses} scored)",
            flush=True,
        )
        json_path = write_json(report, artifacts / "metrics" / "report.json")
        md_path = artifacts / "report.md"
        with atomic_path(md_path) as tmp:
            tmp.write_text(to_markdown(report) + "\n")
        stage.metrics(
            {
                f"{model}_test_{t}_{k}": m[t][k]
                for model, m in report["models"].items()
                for t in TASKS
                for k in ("accuracy", "macro_f1", "ece")
            }
        )
        stage.artifact(json_path, "metrics")
        stage.artifact(md_path)
    print_report(report, md_path)
    return report


def print_report(report: dict, md_path: Path) -> None:
    for model, m in report["models"].items():
        print(
            f"{model:<12} test: " + ", ".join(f"{t} macro_f1={m[t]['macro_f1']:.3f}" for t in TASKS)
        )
    comparison = report["served_raw_vs_processed_rows"]
    print(
        f"served ({report['served_model']}) on the raw rows vs the processed rows: "
        + ", ".join(
            f"{t} {c['raw_rows_macro_f1']:.3f} vs {c['processed_rows_macro_f1']:.3f}"
            for t, c in comparison.items()
        )
    )
    print(f"report: {md_path}")
