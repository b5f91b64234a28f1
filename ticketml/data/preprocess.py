"""preprocess: validate → clean → dedupe → normalise labels → stratified split (atomic writes)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig
from sklearn.model_selection import train_test_split

from pyfunc.text import clean_text
from ticketml import TASKS
from ticketml.contract import DATA_REPORT, LABEL_MAPS, SPLITS, data_version
from ticketml.data.schema import MISSING, apply_mapping, transform_options
from ticketml.data.sources import download_data, find_raw
from ticketml.errors import DataError
from ticketml.io import atomic_path, read_table, write_json

log = logging.getLogger(__name__)
PRIORITY_ORDER = ("lowest", "low", "medium", "normal", "high", "urgent", "critical", "highest")

_SPACE = re.compile(r"\s+")


def normalise_label(label: str, lowercase: bool = True) -> str:
    label = _SPACE.sub(" ", str(label)).strip()
    return label.lower() if lowercase else label


def ordered_labels(task: str, labels: set[str]) -> list[str]:
    """Priorities in severity order when they are known words, everything else sorted."""
    if task == "priority" and labels <= set(PRIORITY_ORDER):
        return [p for p in PRIORITY_ORDER if p in labels]
    return sorted(labels)


def handle_rare(
    df: pd.DataFrame, task: str, min_count: int, strategy: str
) -> tuple[pd.DataFrame, dict]:
    """Classes rarer than `min_count` labelled rows become "other" (or, with strategy=drop, and
    when "other" is itself too rare to split, lose their label: the row still trains the other
    task when it has that label)."""
    counts = df.loc[df[task] != MISSING, task].value_counts()
    rare = sorted(counts[counts < min_count].index)
    if not rare:
        return df, {}
    if strategy not in ("other", "drop"):
        raise DataError(f"preprocess.rare_class_strategy={strategy!r} must be 'other' or 'drop'")
    replacement = "other" if strategy == "other" else MISSING
    df = df.assign(**{task: df[task].where(~df[task].isin(rare), replacement)})
    if strategy == "other" and (df[task] == "other").sum() < min_count:  # still too rare to split
        df = df.assign(**{task: df[task].where(df[task] != "other", MISSING)})
    log.warning("%s: classes rarer than %d rows %s -> %s", task, min_count, rare, strategy)
    return df, {"classes": rare, "strategy": strategy}


def strata(topic: pd.Series, smallest: int = 3) -> pd.Series | None:
    """What the split is stratified on: the topic, rows without one a stratum of their own, and
    strata under `smallest` rows pooled (into the largest when the pool is still too small)."""
    counts = topic.value_counts()
    small = counts[counts < smallest].index
    key = topic.where(~topic.isin(small), "<pooled>")
    if 0 < (key == "<pooled>").sum() < smallest:
        key = key.where(key != "<pooled>", counts.index[0])
    return key if key.nunique() > 1 else None


def split(df: pd.DataFrame, cfg: DictConfig) -> dict[str, pd.DataFrame]:
    p = cfg.preprocess
    seed = int(cfg.seed)
    strat = strata(df["topic"])
    rest, test = train_test_split(df, test_size=p.test_size, random_state=seed, stratify=strat)
    strat_rest = strata(rest["topic"]) if strat is not None else None
    train, val = train_test_split(
        rest, test_size=p.val_size / (1 - p.test_size), random_state=seed, stratify=strat_rest
    )
    return {"train": train, "val": val, "test": test}


def language_shares(df: pd.DataFrame) -> dict:
    """Share of non-English tickets: from the `language` column when the data has one."""
    if "language" not in df.columns:
        return {}
    lang = df["language"].astype(str).str.lower()
    return {
        "language_counts": lang.value_counts().to_dict(),
        "non_english_share": float((~lang.str.startswith("en")).mean()),
    }


def build_report(rows_in: int, counts: dict, splits: dict[str, pd.DataFrame], rare: dict) -> dict:
    lengths = pd.concat(splits.values())["text"].str.len()
    all_text = pd.concat(splits.values())["text"]
    report = {
        "rows_in": rows_in,
        "rows_out": int(sum(len(s) for s in splits.values())),
        **counts,
        "rare_classes": rare,
        "text_length_chars": {
            q: float(lengths.quantile(v)) for q, v in (("p50", 0.5), ("p95", 0.95), ("max", 1.0))
        },
        "non_ascii_share": float(all_text.map(lambda t: not t.isascii()).mean()),
        **language_shares(pd.concat(splits.values())),
        "split_sizes": {k: len(v) for k, v in splits.items()},
        "class_counts": {
            k: {task: v.loc[v[task] != MISSING, task].value_counts().to_dict() for task in TASKS}
            for k, v in splits.items()
        },
        # rows whose label is missing for a task: they train (and are scored on) the other only
        "missing_labels": {
            k: {task: int((v[task] == MISSING).sum()) for task in TASKS} for k, v in splits.items()
        },
    }
    report["rows_without_label"] = {
        task: sum(m[task] for m in report["missing_labels"].values()) for task in TASKS
    }
    texts = {k: set(v["text"]) for k, v in splits.items()}
    report["leaked_texts"] = len(texts["train"] & texts["test"]) + len(
        texts["train"] & texts["val"]
    )
    return report


def preprocess(cfg: DictConfig) -> dict[str, Path]:
    """Read the raw export, write data/processed/{train,val,test}.parquet + artifacts/label_maps.json."""
    p = cfg.preprocess
    raw = read_table(find_raw(cfg), cfg.data.format)
    if raw.empty:
        raise DataError(f"{find_raw(cfg)}: no rows")
    df = apply_mapping(raw, cfg.data)
    rows_in = len(df)
    feedback = None
    if p.feedback:  # agents' corrections from a prediction log win over the export's labels
        from ticketml.monitoring.feedback import add_feedback

        df, feedback = add_feedback(df, str(p.feedback))
    options = transform_options(cfg)
    # raw_text: the ticket as the export has it, what a served model receives (evaluate and
    # promote score it through the model); text: after the transform, what the models learn from
    df.insert(0, "raw_text", df["text"])
    df["text"] = df["text"].map(lambda t: clean_text(t, options))
    lowercase = bool(p.lowercase_labels)
    for task in TASKS:
        df[task] = df[task].map(lambda v: normalise_label(v, lowercase))
    # a row needs its text and at least one label; a label missing for one task (partial labels)
    # leaves the row to train the other
    unlabelled = (df["text"] == "") | (df[list(TASKS)] == MISSING).all(axis=1)
    df = df[~unlabelled]
    dupes = df.duplicated(subset="text", keep="first")
    df = df[~dupes]
    rare = {}
    for task in TASKS:
        df, rare[task] = handle_rare(df, task, int(p.min_class_count), p.rare_class_strategy)
    df = df[(df[list(TASKS)] != MISSING).any(axis=1)]
    if len(df) < int(p.min_rows):
        raise DataError(
            f"only {len(df)} usable rows after cleaning (need preprocess.min_rows={p.min_rows})"
        )
    for task in TASKS:
        classes = sorted(set(df[task]) - {MISSING})
        if len(classes) < 2:
            raise DataError(f"column {task!r} has fewer than 2 classes after cleaning: {classes}")
    splits = split(df.reset_index(drop=True), cfg)
    label_maps = {task: ordered_labels(task, set(df[task]) - {MISSING}) for task in TASKS}
    counts = {"dropped_empty": int(unlabelled.sum()), "dropped_duplicates": int(dupes.sum())}
    report = build_report(rows_in, counts, splits, rare)
    report["text_transform"] = options
    if feedback is not None:
        report["feedback"] = feedback
    return write_outputs(cfg, splits, label_maps, report)


def write_outputs(cfg: DictConfig, splits: dict, label_maps: dict, report: dict) -> dict[str, Path]:
    """Write every output to temp files first, then rename them all (no half-written set)."""
    out_dir = Path(cfg.paths.processed_dir)
    targets = {name: out_dir / f"{name}.parquet" for name in SPLITS}
    with (
        atomic_path(targets["train"]) as t_train,
        atomic_path(targets["val"]) as t_val,
        atomic_path(targets["test"]) as t_test,
    ):
        for tmp, name in ((t_train, "train"), (t_val, "val"), (t_test, "test")):
            splits[name].reset_index(drop=True).to_parquet(tmp, index=False)
    artifacts = Path(cfg.paths.artifacts_dir)
    write_json(label_maps, artifacts / LABEL_MAPS)
    report["data_version"] = data_version(cfg)
    write_json(report, artifacts / DATA_REPORT)
    print(
        f"preprocess: {report['rows_in']} rows in, {report['rows_out']} out "
        f"(dropped {report['dropped_empty']} empty or unlabelled, "
        f"{report['dropped_duplicates']} duplicates); split {report['split_sizes']} -> {out_dir}/"
    )
    if "feedback" in report:
        fb = report["feedback"]
        print(
            f"preprocess: feedback: {fb['corrections']} corrections, {fb['relabelled']} tickets "
            f"relabelled, {fb['added']} added, {fb['without_text']} without a text (skipped: "
            "the log kept no text, serve.log_text=false)"
        )
    missing = report["rows_without_label"]
    if any(missing.values()):
        print(
            "preprocess: partial labels: "
            + ", ".join(f"{n} rows without a {t} label" for t, n in missing.items() if n)
            + " (they train the other task only)"
        )
    log_report(cfg, report, artifacts / DATA_REPORT)
    return {**targets, "label_maps": artifacts / LABEL_MAPS}


def log_report(cfg: DictConfig, report: dict, path: Path) -> None:
    """A `preprocess` MLflow run: the data report as an artifact, its counts as metrics."""
    from ticketml.tracking import stage_run

    counts = {
        k: float(report[k])
        for k in ("rows_in", "rows_out", "dropped_empty", "dropped_duplicates", "leaked_texts")
    }
    for k in ("non_ascii_share", "non_english_share"):
        if k in report:
            counts[k] = float(report[k])
    counts.update({f"rows_{k}": float(v) for k, v in report["split_sizes"].items()})
    counts.update({f"rows_without_{t}": float(n) for t, n in report["rows_without_label"].items()})
    with stage_run(cfg, "preprocess") as stage:
        stage.metrics(counts)
        stage.artifact(path, "data")


def download_and_preprocess(cfg: DictConfig) -> dict[str, Path]:
    download_data(cfg)
    return preprocess(cfg)
