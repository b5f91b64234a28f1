"""Map a source export's columns onto the canonical text/topic/priority(/language) schema."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from pyfunc.text import text_options
from ticketml.errors import DataError

CANONICAL = ("text", "topic", "priority")
MISSING = ""  # a task's label in the processed split when the export has none for the row
UNLABELLED = -1  # its label id: the loss, the metrics and the fits leave such rows out


def _as_list(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def required_columns(data_cfg: DictConfig) -> list[str]:
    cols = data_cfg.columns
    needed = _as_list(cols.text) + _as_list(cols.topic) + _as_list(cols.priority)
    needed += [str(c) for c in (data_cfg.get("filters") or {})]
    return list(dict.fromkeys(needed))


def apply_mapping(df: pd.DataFrame, data_cfg: DictConfig) -> pd.DataFrame:
    """Rename, join, filter and value-map a raw export into text/topic/priority(/language)."""
    missing = [c for c in required_columns(data_cfg) if c not in df.columns]
    if missing:
        raise DataError(
            f"missing column {missing[0]!r} (dataset config {data_cfg.name!r} expects "
            f"{required_columns(data_cfg)}; columns found: {list(df.columns)})"
        )
    for column, allowed in (data_cfg.get("filters") or {}).items():
        allowed = {
            str(v)
            for v in _as_list(
                OmegaConf.to_object(allowed) if not isinstance(allowed, str) else allowed
            )
        }
        df = df[df[column].astype(str).isin(allowed)]
    text_cols = _as_list(data_cfg.columns.text)
    parts = df[text_cols].fillna("").astype(str)
    joiner = str(data_cfg.text_joiner)
    text = [joiner.join(v for v in row if v.strip()) for row in parts.itertuples(False, None)]
    out = pd.DataFrame({"text": pd.Series(text, index=df.index, dtype=str)})
    for task in ("topic", "priority"):
        values = df[data_cfg.columns[task]].fillna("").astype(str).str.strip()
        mapping = {
            str(k): str(v) for k, v in ((data_cfg.get("value_maps") or {}).get(task) or {}).items()
        }
        out[task] = values.map(lambda v, m=mapping: m.get(v, v))
    lang_col = data_cfg.columns.get("language")
    if lang_col and lang_col in df.columns:
        out["language"] = df[lang_col].fillna("").astype(str).str.strip().str.lower()
    return out.reset_index(drop=True)


def encode_labels(df: pd.DataFrame, label_maps: dict[str, list[str]]) -> dict[str, np.ndarray]:
    """Label ids per task; a missing label (partial labels) is UNLABELLED (-1)."""
    out = {}
    for task in ("topic", "priority"):
        values = df[task].fillna(MISSING)
        ids = {label: i for i, label in enumerate(label_maps[task])}
        unknown = set(values) - set(ids) - {MISSING}
        if unknown:
            raise ValueError(
                f"{task}: labels {sorted(unknown)} are not in label_maps.json (rerun preprocess)"
            )
        out[task] = values.map({**ids, MISSING: UNLABELLED}).to_numpy(dtype=np.int64)
    return out


def labelled_rows(labels, *arrays) -> tuple[np.ndarray, ...]:
    """(labels, *arrays) cut to the rows that have a label for the task (the others are
    UNLABELLED): what every fit and score of a task reads."""
    labels = np.asarray(labels)
    keep = labels != UNLABELLED
    return (labels[keep], *(np.asarray(a)[keep] for a in arrays))


def served_texts(df: pd.DataFrame) -> list[str]:
    """The texts as the export had them (`raw_text`, kept by preprocess): what a served model
    receives, so what evaluate, export and promote score. Splits from before it: `text`."""
    return df["raw_text" if "raw_text" in df.columns else "text"].fillna("").astype(str).tolist()


def transform_options(cfg: DictConfig) -> dict[str, bool]:
    """The text transform's options (`preprocess.text`), validated."""
    try:
        return text_options(OmegaConf.to_container(cfg.preprocess.text, resolve=True))
    except ValueError as exc:
        raise DataError(f"preprocess.text: {exc}") from exc


def fold_splits(labels: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(fitted, held-out) row indices of `folds` stratified folds, shuffled with `seed`: the one
    cross-validation split of the hybrid's fits and the baseline's out-of-fold probabilities."""
    from sklearn.model_selection import StratifiedKFold

    split = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # "the least populated class has only 1 member": expected
        warnings.simplefilter("ignore", UserWarning)
        return list(split.split(np.zeros(len(labels)), labels))
