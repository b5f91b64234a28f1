"""`ticketml monitor`'s outputs: one self-contained HTML file (the figure inline), its JSON and
PNG beside it, and a `monitor` MLflow run per model version (tags on the registered version)."""

from __future__ import annotations

import base64
import html
import logging
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)


def timeline(live: pd.DataFrame) -> pd.DataFrame:
    span = live["time"].max() - live["time"].min()
    rule = "h" if span <= pd.Timedelta(days=3) else "D"
    grouped = live.set_index("time").resample(rule)
    out = pd.DataFrame({"predictions": grouped["request_id"].count()})
    if live["needs_review"].notna().any():
        out["needs_review"] = grouped["needs_review"].apply(
            lambda s: s.dropna().astype(float).mean() if s.notna().any() else float("nan")
        )
    out.index = out.index.tz_convert(None)
    return out


def _when(stamp: str) -> str:
    return pd.Timestamp(stamp).strftime("%Y-%m-%d %H:%M")


def _value(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.3f}"
    if isinstance(v, dict):
        return ", ".join(f"{k} {s:.0%}" for k, s in sorted(v.items(), key=lambda kv: -kv[1]))
    return html.escape(str(v))


def version_section(v: dict) -> str:
    title = f"{v['model_name'] or 'model'} version {v['model_version'] or '-'}"
    parts = [f"<h2>{html.escape(title)}</h2>"]
    if not v["judged"]:
        parts.append(
            f"<p>{v['figures']['rows']} predictions: too few to judge (monitor.min_rows).</p>"
        )
    if v["checks"]:
        rows = "".join(
            f"<tr class='{'bad' if c['crossed'] else 'ok'}'><td>{c['check']}</td>"
            f"<td>{html.escape(c['meaning'])}</td><td>{_value(c['value'])}</td>"
            f"<td>{'&gt;' if c['direction'] == 'above' else '&lt;'} {c['threshold']:g}</td>"
            f"<td>{'CROSSED' if c['crossed'] else 'ok'}</td></tr>"
            for c in v["checks"]
        )
        parts.append(
            "<table><tr><th>check</th><th>what it says</th><th>value</th><th>fails when</th>"
            f"<th></th></tr>{rows}</table>"
        )
    figures = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{_value(val)}</td></tr>"
        for k, val in v["figures"].items()
    )
    parts.append(f"<details open><summary>all figures</summary><table>{figures}</table></details>")
    return "\n".join(parts)


STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1300px}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:left;font-size:14px}tr.bad{background:#fdd}tr.ok{background:#efe}
img{max-width:100%;border:1px solid #ddd}"""


def write_report(result: dict, ref: dict, live: pd.DataFrame, current: dict, path: Path) -> Path:
    """`current`: the live window's profile (monitor.profile), `live` its records."""
    from ticketml.io import atomic_path, write_json
    from ticketml.plots import drift_plot

    path.parent.mkdir(parents=True, exist_ok=True)
    png = drift_plot(ref, current, timeline(live), path.with_suffix(".png"))
    image = base64.b64encode(png.read_bytes()).decode("ascii")
    crossed = sum(len(v["crossed"]) for v in result["versions"])
    verdict = f"{crossed} threshold(s) crossed" if crossed else "no threshold crossed"
    body = "\n".join(version_section(v) for v in result["versions"])
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>ticketml monitor: {verdict}</title><style>{STYLE}</style></head><body>
<h1>ticketml monitor: {verdict}</h1>
<p>Prediction log <code>{html.escape(result["log"])}</code>, {_when(result["since"])} to
{_when(result["until"])} UTC. Reference: {html.escape(result["reference"])}.
Torn records skipped: {result["torn_records_skipped"]}.</p>
{body}
<h2>Reference against live (all versions)</h2>
<img alt="drift plots" src="data:image/png;base64,{image}">
</body></html>"""
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    write_json(result, path.with_suffix(".json"))
    return path


def log_to_mlflow(cfg, result: dict, report: Path) -> None:
    """A `monitor` run per model version: its figures as metrics, the report as artifacts, and
    on the registered version the tags monitor.status (ok | drift) and monitor.run_id."""
    from ticketml.tracking import log_safely, stage_run

    for v in result["versions"]:
        numbers = {
            k: float(val)
            for k, val in v["figures"].items()
            if isinstance(val, int | float) and val == val  # not NaN
        }
        with stage_run(cfg, "monitor", log_config=False) as run:
            run.tags(
                **{
                    "model_name": v["model_name"] or "-",
                    "model_version": v["model_version"] or "-",
                    "monitor.window": f"{result['since']} .. {result['until']}",
                    "monitor.status": "drift" if v["crossed"] else "ok",
                    "monitor.crossed": ",".join(v["crossed"]) or "-",
                }
            )
            run.metrics(numbers)
            for f in (report, report.with_suffix(".png"), report.with_suffix(".json")):
                run.artifact(f, "monitor")
            if v["model_name"] and v["model_version"] and run.run_id:
                import mlflow

                client = mlflow.MlflowClient()
                status = "drift" if v["crossed"] else "ok"
                for key, value in (("monitor.status", status), ("monitor.run_id", run.run_id)):
                    log_safely(
                        client.set_model_version_tag,
                        v["model_name"],
                        v["model_version"],
                        key,
                        value,
                    )
