"""`ticketml monitor` on real windows of the prediction log: traffic from the training
distribution passes, a new language or a tripled topic share is flagged (exit 3), live accuracy
comes from agents' feedback, and the figures reach the report and MLflow."""

import json

import mlflow
import numpy as np
import pandas as pd
import pytest

from tests.conftest import run_cli
from ticketml.config import load_config
from ticketml.monitoring.features import vocabulary_of
from ticketml.monitoring.store import FeedbackStore, PredictionLog, read_records
from ticketml.predictor import load_predictor

GERMAN = [
    "Ich kann mich seit heute Morgen nicht mehr im VPN anmelden, bitte helfen Sie mir schnell.",
    "Die Rechnung für November wurde doppelt abgebucht, bitte prüfen Sie das und erstatten Sie es.",
    "Mein Passwort wurde zurückgesetzt, aber der Link in der E-Mail ist leider abgelaufen.",
    "Der Drucker im zweiten Stock druckt nur leere Seiten, wir haben schon alles neu gestartet.",
    "Wir brauchen eine neue Funktion für den Export der Berichte als Tabelle, ist das geplant?",
    "Seit dem Update stürzt die Anwendung beim Start ab und zeigt eine Fehlermeldung an.",
    "Das WLAN im Besprechungsraum ist sehr langsam und bricht ständig ab, bitte um Hilfe.",
    "Jemand hat versucht, sich mit meinem Konto anzumelden, ich habe eine Warnung bekommen.",
]


def splits(workdir) -> dict[str, pd.DataFrame]:
    return {s: pd.read_parquet(workdir / f"data/processed/{s}.parquet") for s in ("val", "test")}


def log_window(workdir, name: str, texts: list[str]) -> str:
    """`texts` through the served model into a prediction log, as the service records them."""
    cfg = load_config(["infer.model_uri=artifacts"])
    classifier, identity = load_predictor(cfg)
    target = str(workdir / name)
    plog = PredictionLog(target, log_text=True)
    for i in range(0, len(texts), 16):
        chunk = texts[i : i + 16]
        rows = classifier.predict(chunk)
        plog.submit(rows, chunk, f"r{i}", identity, "api", 5.0, vocabulary_of(classifier))
    plog.close()
    return target


def monitor(workdir, target: str, *extra: str) -> tuple[int, dict]:
    code = run_cli(
        "monitor",
        f"serve.prediction_log={target}",
        "infer.model_uri=artifacts",
        "monitor.window=1d",
        f"monitor.report={workdir}/reports/{workdir.name}-{len(extra)}.html",
        *extra,
    )
    report = json.loads((workdir / f"reports/{workdir.name}-{len(extra)}.json").read_text())
    return code, report["versions"][0]["figures"] | {"_crossed": report["versions"][0]["crossed"]}


@pytest.fixture
def same_distribution(export_workdir) -> list[str]:
    """Tickets the model never trained on (val; the reference's outputs are on test)."""
    return splits(export_workdir)["val"]["raw_text"].tolist()


def test_traffic_like_the_training_data_passes(export_workdir, same_distribution):
    target = log_window(export_workdir, "log", same_distribution)
    code, fig = monitor(export_workdir, target)
    assert code == 0, fig["_crossed"]
    print("unshifted", {k: round(v, 3) for k, v in fig.items() if isinstance(v, float)})
    assert fig["rows"] == len(same_distribution)
    assert fig["language_jsd"] < 0.1 and fig["new_language_share"] == 0.0
    assert fig["domain_auc"] < 0.7 and fig["length_psi"] < 0.25
    assert fig["topic_mix_jsd"] < 0.15 and abs(fig["oov_increase"]) < 0.05


def test_a_language_the_training_set_lacks_is_flagged(export_workdir, same_distribution):
    shifted = same_distribution[:60] + GERMAN * 15  # 120 of 180 in German
    target = log_window(export_workdir, "log", shifted)
    code, fig = monitor(export_workdir, target)
    print("new language", {k: round(v, 3) for k, v in fig.items() if isinstance(v, float)})
    assert code == 3
    assert {"new_language_share", "language_jsd", "domain_auc", "oov_increase"} <= set(
        fig["_crossed"]
    )
    assert fig["new_language_share"] == pytest.approx(120 / 180)
    assert fig["live_languages"]["de"] == pytest.approx(120 / 180)
    assert (
        fig["domain_auc"] > 0.8
    )  # at most ~0.83: a third of the live texts are like the reference
    runs = mlflow.search_runs(experiment_names=["ticketml"])
    last = runs[runs["tags.ticketml.stage"] == "monitor"].iloc[0]
    assert last["tags.monitor.status"] == "drift"
    assert last["metrics.new_language_share"] == pytest.approx(120 / 180)
    page = (export_workdir / f"reports/{export_workdir.name}-0.html").read_text()
    assert "threshold(s) crossed" in page and "data:image/png;base64," in page


def test_a_topic_share_tripled_is_flagged(export_workdir):
    both = pd.concat(splits(export_workdir).values())
    shares = both["topic"].value_counts(normalize=True)
    top = shares[shares <= 0.2].index[0]  # a topic of at most a fifth, three times its share
    rng = np.random.default_rng(0)
    share = shares[top]
    n_top = int(round(3 * share * 180))
    rows = pd.concat(
        [
            both[both["topic"] == top].sample(n_top, replace=True, random_state=0),
            both[both["topic"] != top].sample(180 - n_top, replace=True, random_state=0),
        ]
    ).iloc[rng.permutation(180)]
    target = log_window(export_workdir, "log", rows["raw_text"].tolist())
    code, fig = monitor(export_workdir, target)
    print("topic tripled", {k: round(v, 3) for k, v in fig.items() if isinstance(v, float)})
    assert code == 3 and "topic_mix_jsd" in fig["_crossed"]
    assert "language_jsd" not in fig["_crossed"] and "domain_auc" not in fig["_crossed"]


def test_live_accuracy_comes_from_agents_feedback(export_workdir):
    test = splits(export_workdir)["test"]
    target = log_window(export_workdir, "log", test["raw_text"].tolist())
    logged = read_records(target).sort_values("request_id")
    truth = dict(zip(test["raw_text"], test["topic"], strict=True))
    store = FeedbackStore(target)
    for row in logged.itertuples():
        store.put(row.request_id, None, truth[row.text], None)
    expected = float((logged["text"].map(truth) == logged["topic"]).mean())
    code, fig = monitor(export_workdir, target, "monitor.thresholds.min_feedback_macro_f1=0.99")
    assert fig["feedback_rows"] == len(test)
    assert fig["feedback_topic_accuracy"] == pytest.approx(expected)
    assert "priority" not in "".join(k for k in fig if k.startswith("feedback_p"))
    assert code == 3 and fig["_crossed"] == ["min_feedback_macro_f1"]


def test_an_empty_window_is_one_clear_error(export_workdir, capsys):
    target = log_window(export_workdir, "log", ["VPN is down"])
    code = run_cli(
        "monitor",
        f"serve.prediction_log={target}",
        "monitor.since=2020-01-01",
        "monitor.until=2020-02-01",
    )
    assert code == 1
    assert "no predictions in" in capsys.readouterr().err


def test_two_windows_of_the_log_compare_with_each_other(export_workdir, same_distribution):
    """monitor.reference=SINCE..UNTIL: last month's traffic is the reference, not the training
    split (no model or data needed for it)."""
    import ticketml.monitoring.store as store

    with pytest.MonkeyPatch.context() as past:  # (the fixture's own monkeypatch holds the cwd)
        past.setattr(store, "now_iso", lambda: "2026-11-01T12:00:00.000Z")
        target = log_window(export_workdir, "log", same_distribution)  # a month ago
    log_window(export_workdir, "log", same_distribution[:30] + GERMAN * 8)  # today
    code, fig = monitor(export_workdir, target, "monitor.reference=2026-11-01..2026-11-02")
    assert code == 3 and fig["rows"] == 30 + 64
    assert fig["new_language_share"] == pytest.approx(64 / 94)
    report = json.loads((export_workdir / f"reports/{export_workdir.name}-1.json").read_text())
    assert report["reference"].startswith("logged predictions 2026-11-01 .. 2026-11-02 (90 rows)")
