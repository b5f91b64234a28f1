"""Closing the loop: agents' corrections as labelled rows for the next training set
(`ticketml data preprocess.feedback=<log>`) and for promotion's feedback gate."""

from __future__ import annotations

import logging

import pandas as pd

from ticketml.data.schema import MISSING
from ticketml.monitoring.features import detect_language, text_hash
from ticketml.monitoring.store import TASKS, read_feedback, read_records

log = logging.getLogger(__name__)


def corrections(target: str, since=None, until=None) -> tuple[pd.DataFrame, int]:
    """(rows with text, topic, priority, time; the count of corrections without a text): a
    correction by request id takes the text the log kept (serve.log_text=true), one by text
    its own; the latest per text wins."""
    fb = read_feedback(target)
    if since is not None:
        fb = fb[(fb["time"] >= since) & (fb["time"] < until)]
    if fb.empty:
        return pd.DataFrame(columns=["text", "topic", "priority", "time"]), 0
    by_id = fb[fb["text"].isna() & fb["request_id"].notna()]
    if not by_id.empty:
        logged = read_records(target)[["request_id", "text"]].dropna().drop_duplicates("request_id")
        texts = by_id[["request_id"]].merge(logged, on="request_id", how="left")["text"]
        fb.loc[by_id.index, "text"] = texts.to_numpy()
    without = int(fb["text"].isna().sum())
    rows = fb[fb["text"].notna()].copy()
    rows["key"] = rows["text"].map(text_hash)
    rows = rows.sort_values("time", kind="stable").drop_duplicates("key", keep="last")
    return rows[["text", "topic", "priority", "time"]].reset_index(drop=True), without


def add_feedback(df: pd.DataFrame, target: str) -> tuple[pd.DataFrame, dict]:
    """The export with the corrections in: a corrected ticket takes the agent's labels (a task
    left out keeps the export's), a ticket the export lacks is added."""
    fixes, without = corrections(target)
    report = {"corrections": len(fixes) + without, "without_text": without}
    keys = df["text"].map(text_hash)
    position = {k: i for i, k in enumerate(keys)}  # the first copy: later ones are duplicates
    relabelled, added = 0, []
    df = df.copy()
    for row in fixes.itertuples(index=False):
        labels = {t: getattr(row, t) for t in TASKS if isinstance(getattr(row, t), str)}
        i = position.get(text_hash(row.text))
        if i is None:
            new = {"text": row.text, **{t: labels.get(t, MISSING) for t in TASKS}}
            if "language" in df.columns:
                new["language"] = detect_language(row.text)
            added.append(new)
            continue
        for task, label in labels.items():
            df.iloc[i, df.columns.get_loc(task)] = label
        relabelled += 1
    if added:
        df = pd.concat([df, pd.DataFrame(added)], ignore_index=True)
    report |= {"relabelled": relabelled, "added": len(added)}
    log.info("feedback from %s: %s", target, report)
    return df, report
