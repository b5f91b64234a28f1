"""register: log the pyfunc model (models-from-code), register it, alias @challenger.
promote: move @champion to the challenger only when it is at least as good on the held-out test set."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import shutil
import sys
import tempfile
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig

from ticketml import TASKS
from ticketml.data.schema import served_texts
from ticketml.errors import ModelError, TicketMLError
from ticketml.io import read_json
from ticketml.metrics import flat_metrics, task_metrics
from ticketml.model_card import build_card
from ticketml.predictor import graph_choice

log = logging.getLogger(__name__)
BUNDLE_PREFIX = "ticketml_model_"
PROMOTION_MARK = "<!-- promotion decision above, model card below -->"
MODEL_SCRIPT = """# models-from-code entry of a ticketml version: its own bundled serving code
import mlflow

from {package}.model import TicketMLModel

mlflow.models.set_model(TicketMLModel())
"""


def serving_requirements() -> list[str]:
    """The model's pip requirements: pyfunc/requirements.txt, the one list of serving pins."""
    lines = (serving_source() / "requirements.txt").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


INPUT_EXAMPLE = pd.DataFrame(
    {"text": ["Не могу подключиться к VPN с ноутбука", "I was charged twice this month"]}
)


def signature():
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, Map, ParamSchema, ParamSpec, Schema

    # a named `text` column: DataFrames, records, {"text": [...]} and every /invocations payload shape
    inputs = Schema([ColSpec("string", "text")])
    outputs = Schema(
        [
            ColSpec("string", "topic"),
            ColSpec("string", "priority"),
            ColSpec(Map("double"), "topic_scores"),
            ColSpec(Map("double"), "priority_scores"),
        ]
    )
    params = ParamSchema([ParamSpec("min_confidence", "double", None)])
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)


def served_bundle(cfg: DictConfig, dest: Path):
    """A copy of exactly the served files of the export (pyfunc.bundle.copy_served) in `dest`:
    the registered version's one artifact. ModelError when the export is incomplete."""
    from pyfunc.bundle import copy_served

    try:
        return copy_served(cfg.paths.artifacts_dir, dest, graph_choice(cfg))
    except FileNotFoundError as exc:
        raise ModelError(str(exc)) from exc


def exported_metrics(cfg: DictConfig, bundle) -> dict[str, float]:
    """The test metrics a version is tagged with, from the export that made its bundle: the
    served model's under their plain names (the hybrid's where it is one, else its graph's),
    and the transformer graph's and the TF-IDF baseline's beside them (`transformer_`,
    `baseline_`)."""
    from pyfunc.bundle import ONNX_INT8

    graph = "onnx_int8" if bundle.graph == ONNX_INT8 else "onnx"
    served = "hybrid" if bundle.hybrid else graph
    out: dict[str, float] = {}
    for name, prefix in ((served, ""), (graph, "transformer_"), ("baseline", "baseline_")):
        path = Path(cfg.paths.artifacts_dir) / "metrics" / f"{name}.json"
        if path.is_file():
            flat = flat_metrics(read_json(path))
            out |= {prefix + k: v for k, v in flat.items() if k.startswith("test_")}
    return out | language_metrics(cfg)


def language_metrics(cfg: DictConfig) -> dict[str, float]:
    """The served model's test scores per language, from `evaluate`'s report of this export
    (`lang_<code>_test_<task>_macro_f1`, `..._accuracy`, `lang_<code>_test_rows`); none without
    a report or a language column."""
    path = Path(cfg.paths.artifacts_dir) / "metrics" / "report.json"
    if not path.is_file():
        return {}
    report = read_json(path)
    served = report.get("served_model")
    out: dict[str, float] = {}
    for lang, models in (report.get("by_language") or {}).items():
        for task, values in (models.get(served) or {}).items():
            for key in ("macro_f1", "accuracy"):
                out[f"lang_{lang}_test_{task}_{key}"] = float(values[key])
            out[f"lang_{lang}_test_rows"] = float(values["n"])
    return out


def serving_source() -> Path:
    import pyfunc

    return Path(pyfunc.__file__).resolve().parent


def code_hash(source: Path) -> str:
    """sha256 of the serving package's Python files (names and contents)."""
    digest = hashlib.sha256()
    for path in sorted(source.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def bundle_code(dest: Path, source: Path | None = None) -> tuple[Path, Path, str]:
    """Copy the serving package (pyfunc/) into `dest` as `ticketml_model_<hash>` and write the
    models-from-code script importing from it: (package dir, script, hash). Loaded in one
    process, two versions with different code never share modules (MLflow evicts only the
    code path's leaf module names from sys.modules, mlflow#12471), and neither uses the
    installed `pyfunc` package."""
    source = source or serving_source()
    digest = code_hash(source)
    package = dest / f"{BUNDLE_PREFIX}{digest[:16]}"
    package.mkdir(parents=True)
    for path in source.glob("*.py"):
        shutil.copy(path, package / path.name)
    script = dest / "model.py"
    script.write_text(MODEL_SCRIPT.format(package=package.name))
    return package, script, digest


@contextlib.contextmanager
def importable(folder: Path, package: str):
    """`folder` on sys.path for the block; the bundle's modules forgotten afterwards."""
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        sys.path.remove(str(folder))
        for module in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
            del sys.modules[module]


def log_model(name: str, script: Path, package: Path, bundle: Path):
    """The served bundle as a pyfunc LoggedModel named after the registered model, registered."""
    from pyfunc.bundle import ARTIFACT

    return mlflow.pyfunc.log_model(
        name=name,
        python_model=str(script),
        artifacts={ARTIFACT: str(bundle)},
        code_paths=[str(package)],
        signature=signature(),
        input_example=INPUT_EXAMPLE,
        pip_requirements=serving_requirements(),
        registered_model_name=name,
    )


def run_register(cfg: DictConfig) -> int:
    """Log + register the exported model; the new version gets alias `challenger`. Returns the version."""
    from ticketml.tracking import stage_run

    name = cfg.registry.model_name
    with tempfile.TemporaryDirectory() as tmp:
        bundle = served_bundle(cfg, Path(tmp) / "bundle")  # before any run: a clear error
        with stage_run(cfg, "register", registry=True) as stage:
            package, script, digest = bundle_code(Path(tmp) / "code")
            stage.tags(**{"ticketml.code_sha256": digest})
            with importable(Path(tmp) / "code", package.name):  # log_model imports the script
                info = log_model(name, script, package, bundle.directory)
            datasets = stage.inputs(cfg, ("train", "val", "test"))
            metrics = exported_metrics(cfg, bundle)
            # on the run and on the LoggedModel, linked to the test split they were measured on
            stage.metrics(metrics, model_id=info.model_id, dataset=datasets.get("test"))
            card = build_card(cfg, bundle.config)
            stage.text(card, "model_card.md")
            stage.artifact(Path(cfg.paths.artifacts_dir) / "metrics" / "report.json", "evaluation")
    version = info.registered_model_version
    client = MlflowClient()
    client.update_model_version(name, str(version), description=card)
    for key, value in {
        **metrics,
        "source_run_id": stage.run_id,
        "model_id": info.model_id,  # the LoggedModel (named after the registered model)
        "code_sha256": digest,
        "onnx": bundle.graph,
    }.items():
        client.set_model_version_tag(name, str(version), key, str(value))
    client.set_registered_model_alias(name, "challenger", str(version))
    print(f"registered {name} version {version} as @challenger (models:/{name}@challenger)")
    return int(version)


def evaluate_version(
    name: str, version: str, test: pd.DataFrame, scores_dir: str | Path, tasks=TASKS
) -> dict[str, float]:
    """Load a registered version through pyfunc and score the held-out test split (its graph's
    logits read back from what export_onnx stored under `scores_dir` where it is the same graph:
    ticketml.scores)."""
    from ticketml.baseline import attach_stores

    model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    classifier = model.unwrap_python_model().classifier
    store = attach_stores(classifier, scores_dir)
    preds = model.predict(pd.DataFrame({"text": served_texts(test)}))  # as the export had them
    log.info("version %s: %d of %d test texts' logits read back", version, store.hits, len(test))
    label_maps = classifier.label_maps
    result = {}
    for task in tasks:
        ids = {label: i for i, label in enumerate(label_maps[task])}
        y_true = test[task].map(lambda v, ids=ids: ids.get(v, -1)).to_numpy()
        y_pred = preds[task].map(ids).to_numpy()
        result[task] = task_metrics(y_true, y_pred, label_maps[task])
    return {k.removeprefix("test_"): v for k, v in flat_metrics({"test": result}).items()}


def gate(
    metric: str,
    challenger: dict[str, float],
    champion: dict[str, float] | None,
    min_delta: float,
    floor: float | None = None,
) -> tuple[bool, str]:
    """MLflow's validation: challenger[metric] >= champion[metric] + min_delta, and >= floor
    (the TF-IDF baseline's score on the same test split) when a floor is given."""
    from mlflow.models import MetricThreshold
    from mlflow.models.evaluation import EvaluationResult

    if metric not in challenger:
        raise TicketMLError(f"promote.metric={metric!r} is not one of {sorted(challenger)}")
    value = challenger[metric]
    thresholds, checks = [], []
    if floor is not None:
        thresholds.append(MetricThreshold(threshold=floor, greater_is_better=True))
        checks.append(f"baseline floor {floor:.4f}")
    if champion is not None:
        if min_delta > 0:
            thresholds.append(
                MetricThreshold(min_absolute_change=min_delta, greater_is_better=True)
            )
        else:  # MLflow requires a positive min_absolute_change; an absolute threshold covers delta <= 0
            thresholds.append(
                MetricThreshold(threshold=champion[metric] + min_delta, greater_is_better=True)
            )
        checks.append(f"champion {champion[metric]:.4f} + {min_delta}")
    if not thresholds:
        return True, "no champion yet: the first registered model becomes champion"
    baseline_result = EvaluationResult(champion, {}) if champion is not None else None
    for threshold in thresholds:
        try:
            mlflow.validate_evaluation_results(
                {metric: threshold}, EvaluationResult(challenger, {}), baseline_result
            )
        except MlflowException as exc:
            return (
                False,
                f"{metric} {value:.4f} fails {' and '.join(checks)}: {exc.message.strip()}",
            )
    first = "" if champion is not None else "first model; "
    return True, f"{first}{metric} {value:.4f} >= {' and '.join(checks)}"


def feedback_gate(
    cfg: DictConfig, name: str, challenger: str, champion: str | None, scores_dir: Path
) -> tuple[bool, str, dict] | None:
    """With promote.feedback_window: champion and challenger scored on the agents' corrections of
    that window (the tickets live traffic brought); the challenger must be at least as good.
    None when off, when there is no champion, or with fewer than promote.feedback_min_rows."""
    p = cfg.promote
    if not p.feedback_window or champion is None:
        return None
    from ticketml.monitoring.feedback import corrections
    from ticketml.monitoring.monitor import parse_span

    until = pd.Timestamp.now(tz="UTC")
    rows, without = corrections(
        str(cfg.serve.prediction_log), until - parse_span(p.feedback_window), until
    )
    tasks = [t for t in TASKS if rows[t].notna().any()]
    if len(rows) < int(p.feedback_min_rows) or not tasks:
        print(
            f"promote: feedback gate skipped: {len(rows)} corrections with a text in the last "
            f"{p.feedback_window} (promote.feedback_min_rows={p.feedback_min_rows}; "
            f"{without} without a text)"
        )
        return None
    frame = pd.DataFrame({"raw_text": rows["text"], **{t: rows[t] for t in TASKS}})
    ours, theirs = (
        evaluate_version(name, v, frame, scores_dir, tasks) for v in (challenger, champion)
    )
    metric = cfg.promote.metric if cfg.promote.metric in ours else "mean_macro_f1"
    passed, reason = gate(metric, ours, theirs, 0.0)
    tags = {
        "promotion_feedback_rows": str(len(rows)),
        f"promotion_feedback_challenger_{metric}": f"{ours[metric]:.6f}",
        f"promotion_feedback_champion_{metric}": f"{theirs[metric]:.6f}",
    }
    return passed, f"feedback ({len(rows)} corrections, {', '.join(tasks)}): {reason}", tags


def baseline_floor(cfg: DictConfig, metric: str) -> float | None:
    """The baseline's test score for `metric` (artifacts/metrics/baseline.json), if configured."""
    path = Path(cfg.paths.artifacts_dir) / "metrics" / "baseline.json"
    if not cfg.promote.baseline_floor or not path.is_file():
        return None
    flat = {k.removeprefix("test_"): v for k, v in flat_metrics(read_json(path)).items()}
    return flat.get(metric)


def aliased_versions(client: MlflowClient, name: str):
    """(the @challenger version, the @champion version or None); an error naming the command
    to run where there is no challenger."""
    try:
        challenger = client.get_model_version_by_alias(name, "challenger")
    except MlflowException as exc:
        raise ModelError(
            f"no models:/{name}@challenger (run `ticketml register` first): {exc.message}"
        ) from exc
    try:
        champion = client.get_model_version_by_alias(name, "champion")
    except MlflowException:
        champion = None
    return challenger, champion


def record_decision(
    client: MlflowClient, name: str, version, champion, tags: dict, reason: str
) -> None:
    """The decision on the challenger `version`: its tags, the first line of its card and, when
    promoted, @champion moved to it (last: a failure before leaves the aliases as they were)."""
    decision = tags["promotion_decision"]
    promoted = decision == "promoted"
    try:
        for key, value in tags.items():
            client.set_model_version_tag(name, version, key, value)
        card = client.get_model_version(name, version).description or ""
        card = card.split(PROMOTION_MARK)[-1].lstrip()  # a rerun replaces the decision
        client.update_model_version(
            name, version, description=f"{decision}: {reason}\n{PROMOTION_MARK}\n{card}"
        )
        if promoted:
            client.set_registered_model_alias(name, "champion", version)
    except MlflowException as exc:
        before = f"version {champion.version}" if champion else "unset"
        raise ModelError(
            f"promote stopped half-way ({decision} version {version}): "
            f"{exc.message.strip()[:300]}; aliases unchanged (@champion {before}, "
            f"@challenger version {version})"
        ) from exc


def run_promote(cfg: DictConfig) -> bool:
    """Compare @challenger and @champion on data/processed/test.parquet; move @champion if it passes."""
    from ticketml.contract import load_splits
    from ticketml.tracking import setup_mlflow

    setup_mlflow(cfg, registry=True)
    name, metric, min_delta = (
        cfg.registry.model_name,
        cfg.promote.metric,
        float(cfg.promote.min_delta),
    )
    client = MlflowClient()
    challenger, champion = aliased_versions(client, name)
    if champion is not None and champion.version == challenger.version:
        print(f"version {challenger.version} is already @champion")
        return True
    test = load_splits(cfg)["test"]
    stored = Path(cfg.paths.artifacts_dir)
    challenger_metrics = evaluate_version(name, challenger.version, test, stored)
    champion_metrics = evaluate_version(name, champion.version, test, stored) if champion else None
    floor = baseline_floor(cfg, metric)
    promoted, reason = gate(metric, challenger_metrics, champion_metrics, min_delta, floor)
    tags = {f"promotion_challenger_{metric}": f"{challenger_metrics[metric]:.6f}"}
    on_feedback = feedback_gate(
        cfg, name, challenger.version, champion.version if champion else None, stored
    )
    if on_feedback is not None:
        promoted, reason = promoted and on_feedback[0], f"{reason}; {on_feedback[1]}"
        tags |= on_feedback[2]
    decision = "promoted" if promoted else "rejected"
    tags |= {"promotion_decision": decision, "promotion_reason": reason}
    if champion_metrics:
        tags[f"promotion_champion_{metric}"] = f"{champion_metrics[metric]:.6f}"
        tags["promotion_champion_version"] = str(champion.version)
    record_decision(client, name, challenger.version, champion, tags, reason)
    if promoted:
        print(f"promoted version {challenger.version} to @champion: {reason}")
    else:
        kept = f"kept @champion at version {champion.version}" if champion else "no @champion set"
        print(f"{kept}; version {challenger.version} not promoted: {reason}")
    return promoted
