"""`ticketml monitor`: is the served model still right? Over a window of the prediction log,
per model version: input drift (text length, language mix, unknown words, a domain classifier
when texts are logged), output drift (predicted mix, confidence, needs_review) against the
training split scored by the model (or an earlier window), and live accuracy / macro-F1 from
agents' feedback. Writes an HTML report and JSON, logs a `monitor` run per model version, and
exits 3 when a figure crosses its threshold (`monitor.thresholds`), so a scheduler can alert."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from ticketml.errors import TicketMLError
from ticketml.monitoring import drift
from ticketml.monitoring.features import detect_language, oov_share, vocabulary_of
from ticketml.monitoring.store import TASKS, read_feedback, read_records

REFERENCE_CAP = 2000  # reference texts for the input statistics
# figure -> (direction, what it says): "above" fails when the figure is over the threshold
CHECKS = {
    "length_psi": ("above", "text length shifted (PSI)"),
    "language_jsd": ("above", "language mix shifted (Jensen-Shannon distance)"),
    "new_language_share": ("above", "share of texts in languages the reference lacks"),
    "oov_increase": ("above", "rise in words the model's vocabulary lacks"),
    "domain_auc": ("above", "a classifier tells live from reference texts (AUC)"),
    "topic_mix_jsd": ("above", "predicted topic mix shifted (Jensen-Shannon distance)"),
    "priority_mix_jsd": ("above", "predicted priority mix shifted (Jensen-Shannon distance)"),
    "confidence_drop": ("above", "mean topic confidence fell"),
    "needs_review_share": ("above", "share of predictions flagged needs_review"),
    "min_feedback_macro_f1": ("below", "live macro-F1 on agents' feedback (mean over tasks)"),
}
FIGURE_OF = {"min_feedback_macro_f1": "feedback_macro_f1"}


class DriftDetected(TicketMLError):
    """A threshold was crossed: the CLI exits 3 (an error is 1)."""

    exit_code = 3


def parse_span(text: str) -> dt.timedelta:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([dhm])\s*", str(text))
    if not match:
        raise TicketMLError(f"monitor.window={text!r}: give N d, N h or N m (e.g. 7d, 24h)")
    value, unit = float(match[1]), match[2]
    return dt.timedelta(**{{"d": "days", "h": "hours", "m": "minutes"}[unit]: value})


def parse_time(text: str, key: str) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(str(text))
    except ValueError as exc:
        raise TicketMLError(f"{key}={text!r} is not an ISO time (e.g. 2026-11-01T00:00)") from exc
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def live_window(m: DictConfig, now: pd.Timestamp | None = None) -> tuple[pd.Timestamp, ...]:
    now = now or pd.Timestamp.now(tz="UTC")
    until = parse_time(m.until, "monitor.until") if m.until else now
    since = parse_time(m.since, "monitor.since") if m.since else until - parse_span(m.window)
    if since >= until:
        raise TicketMLError(f"the window is empty: since {since} is not before until {until}")
    return since, until


def in_window(frame: pd.DataFrame, since, until) -> pd.DataFrame:
    return frame[(frame["time"] >= since) & (frame["time"] < until)]


def reference_from_train(cfg: DictConfig, classifier, seed: int) -> dict:
    """The training split's input profile (what the model learned from), and the model's outputs
    on `reference_rows` of the test split (held out: as sure as it is of tickets it never saw)."""
    from ticketml.contract import split_path
    from ticketml.io import read_table

    paths = {s: split_path(cfg, s) for s in ("train", "test")}
    for path in paths.values():
        if not path.is_file():
            raise TicketMLError(
                f"monitor.reference=train needs the split {path} (run `ticketml data`), or give "
                "an earlier window of the log: monitor.reference=SINCE..UNTIL"
            )
    train, test = (read_table(paths[s]) for s in ("train", "test"))

    def raw(frame: pd.DataFrame, n: int) -> list[str]:
        column = "raw_text" if "raw_text" in frame.columns else "text"  # as served models get it
        return frame.sample(min(len(frame), n), random_state=seed)[column].astype(str).tolist()

    texts, scored = raw(train, REFERENCE_CAP), raw(test, int(cfg.monitor.reference_rows))
    vocab = vocabulary_of(classifier)
    rows = classifier.predict(scored, min_confidence=cfg.serve.min_confidence)
    return {
        "what": f"training split ({len(train)} rows); outputs on {len(scored)} test rows",
        "text_chars": [len(t) for t in texts],
        "language": [detect_language(t) for t in texts],
        "oov_share": [v for v in (oov_share(t, vocab) for t in texts) if v is not None],
        "texts": texts,
        "topic": [r["topic"] for r in rows],
        "priority": [r["priority"] for r in rows],
        "topic_score": [r["topic_scores"][r["topic"]] for r in rows],
        "needs_review": [r["needs_review"] for r in rows if "needs_review" in r],
    }


def reference_from_log(records: pd.DataFrame, spec: str) -> dict:
    since, _, until = str(spec).partition("..")
    if not until:
        raise TicketMLError(f"monitor.reference={spec!r}: give train or SINCE..UNTIL (ISO times)")
    ref = in_window(
        records,
        parse_time(since, "monitor.reference"),
        parse_time(until, "monitor.reference"),
    )
    if ref.empty:
        raise TicketMLError(f"monitor.reference={spec}: no predictions logged in that window")
    return profile(ref) | {"what": f"logged predictions {since} .. {until} ({len(ref)} rows)"}


def profile(frame: pd.DataFrame) -> dict:
    """What a window of the log says, in the reference's shape."""
    return {
        "text_chars": frame["text_chars"].astype(float).tolist(),
        "language": frame["language"].astype(str).tolist(),
        "oov_share": frame["oov_share"].dropna().astype(float).tolist(),
        "texts": frame["text"].dropna().astype(str).tolist(),
        "topic": frame["topic"].astype(str).tolist(),
        "priority": frame["priority"].astype(str).tolist(),
        "topic_score": frame["topic_score"].astype(float).tolist(),
        "needs_review": frame["needs_review"].dropna().astype(bool).tolist(),
    }


def feedback_scores(live: pd.DataFrame, feedback: pd.DataFrame) -> dict:
    """Live accuracy and macro-F1 per task on the predictions agents corrected (or confirmed)."""
    from sklearn.metrics import accuracy_score, f1_score

    joined = live.merge(feedback, on="request_id", suffixes=("", "_true"))
    out: dict = {"feedback_rows": int(len(joined))}
    f1s = []
    for task in TASKS:
        rows = joined[joined[f"{task}_true"].notna()]
        if rows.empty:
            continue
        truth, pred = rows[f"{task}_true"].astype(str), rows[task].astype(str)
        out[f"feedback_{task}_accuracy"] = float(accuracy_score(truth, pred))
        labels = sorted(set(truth))  # macro over the classes agents gave
        f1 = float(f1_score(truth, pred, labels=labels, average="macro", zero_division=0))
        out[f"feedback_{task}_macro_f1"] = f1
        f1s.append(f1)
    if f1s:
        out["feedback_macro_f1"] = float(np.mean(f1s))
    return out


def figures(ref: dict, live: pd.DataFrame, seed: int) -> dict:
    cur = profile(live)
    out = {
        "rows": len(live),
        "length_psi": drift.psi(np.log1p(ref["text_chars"]), np.log1p(cur["text_chars"])),
        "language_jsd": drift.js_distance(ref["language"], cur["language"]),
        "new_language_share": drift.new_category_share(ref["language"], cur["language"]),
        "live_languages": drift.shares(cur["language"]),
        "topic_mix_jsd": drift.js_distance(ref["topic"], cur["topic"]),
        "priority_mix_jsd": drift.js_distance(ref["priority"], cur["priority"]),
        "mean_confidence": float(np.mean(cur["topic_score"])),
        "reference_confidence": float(np.mean(ref["topic_score"])),
    }
    out["confidence_drop"] = out["reference_confidence"] - out["mean_confidence"]
    if ref["oov_share"] and cur["oov_share"]:
        out["oov_share"] = float(np.mean(cur["oov_share"]))
        out["reference_oov_share"] = float(np.mean(ref["oov_share"]))
        out["oov_increase"] = out["oov_share"] - out["reference_oov_share"]
    if cur["needs_review"]:
        out["needs_review_share"] = float(np.mean(cur["needs_review"]))
    if len(cur["texts"]) >= 10 and len(ref["texts"]) >= 10:
        out["domain_auc"] = drift.domain_auc(ref["texts"], cur["texts"], seed)
    return out


def judge(values: dict, thresholds: dict) -> list[dict]:
    """One line per configured threshold: the figure, the limit, crossed or not (or not known)."""
    lines = []
    for name, limit in thresholds.items():
        if name not in CHECKS or limit is None:
            continue
        direction, meaning = CHECKS[name]
        value = values.get(FIGURE_OF.get(name, name))
        known = value is not None and not (isinstance(value, float) and np.isnan(value))
        crossed = known and (value > limit if direction == "above" else value < limit)
        lines.append(
            {
                "check": name,
                "meaning": meaning,
                "value": float(value) if known else None,
                "threshold": float(limit),
                "direction": direction,
                "crossed": bool(crossed),
            }
        )
    return lines


def run_monitor(cfg: DictConfig) -> dict:
    from ticketml.monitoring.report import log_to_mlflow, write_report
    from ticketml.predictor import load_predictor

    m = cfg.monitor
    target = cfg.serve.prediction_log
    if not target:
        raise TicketMLError("serve.prediction_log is null: there is no prediction log to monitor")
    unknown = set(m.thresholds) - set(CHECKS)
    if unknown:
        raise TicketMLError(
            f"monitor.thresholds: unknown {sorted(unknown)}; known: {', '.join(CHECKS)}"
        )
    records = read_records(target)
    since, until = live_window(m)
    live = in_window(records, since, until)
    if live.empty:
        raise TicketMLError(
            f"no predictions in {target} between {since:%Y-%m-%d %H:%M} and "
            f"{until:%Y-%m-%d %H:%M} UTC ({len(records)} in the log)"
        )
    seed = int(cfg.seed)
    if str(m.reference) == "train":
        classifier, identity = load_predictor(cfg, m.model_uri)
        ref = reference_from_train(cfg, classifier, seed)
    else:
        ref = reference_from_log(records, m.reference)
    feedback = read_feedback(target)
    versions = []
    for version, part in live.groupby(live["model_version"].fillna("-"), sort=True):
        values = figures(ref, part, seed) | feedback_scores(part, feedback)
        judged = len(part) >= int(m.min_rows)
        checks = judge(values, dict(m.thresholds)) if judged else []
        versions.append(
            {
                "model_name": part["model_name"].dropna().iloc[0]
                if part["model_name"].notna().any()
                else None,
                "model_version": None if version == "-" else str(version),
                "judged": judged,
                "figures": values,
                "checks": checks,
                "crossed": [c["check"] for c in checks if c["crossed"]],
            }
        )
    result = {
        "log": str(target),
        "since": since.isoformat(),
        "until": until.isoformat(),
        "reference": ref["what"],
        "torn_records_skipped": int(records.attrs.get("torn", 0)),
        "versions": versions,
    }
    report = write_report(result, ref, live, profile(live), Path(m.report))
    result["report"] = str(report)
    if m.log_to_mlflow:
        log_to_mlflow(cfg, result, report)
    print_summary(result)
    crossed = [(v["model_version"], c) for v in versions for c in v["crossed"]]
    if crossed:
        said = ", ".join(f"{c} (version {v or '-'})" for v, c in crossed)
        raise DriftDetected(f"monitor: thresholds crossed: {said}; report {report}")
    return result


def print_summary(result: dict) -> None:
    print(f"monitor: {result['log']} {result['since']} .. {result['until']}")
    print(f"  reference: {result['reference']}")
    for v in result["versions"]:
        name = f"{v['model_name'] or 'model'} version {v['model_version'] or '-'}"
        rows = v["figures"]["rows"]
        if not v["judged"]:
            print(f"  {name}: {rows} predictions, too few to judge (monitor.min_rows)")
            continue
        print(f"  {name}: {rows} predictions")
        for c in v["checks"]:
            value = "n/a" if c["value"] is None else f"{c['value']:.3f}"
            sign = ">" if c["direction"] == "above" else "<"
            flag = "CROSSED" if c["crossed"] else "ok"
            print(f"    {c['check']:<24} {value:>7}  (fails {sign} {c['threshold']:g})  {flag}")
    print(f"  report: {result['report']}")
