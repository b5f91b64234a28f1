"""No split is scored twice by the same graph: export_onnx stores the logits it computed
(ticketml.scores), evaluate and promote read them back and score exactly what a fresh run
would; the torch module stands in for the fp32 graph only where it agrees with it."""

import json

import numpy as np
import pytest

from pyfunc.core import TicketClassifier
from tests.conftest import run_cli
from ticketml import TASKS, scores
from ticketml.config import load_config
from ticketml.contract import load_splits
from ticketml.data.schema import served_texts
from ticketml.errors import ModelError
from ticketml.evaluate import build_report
from ticketml.export import fp32_device, load_checkpoint, runner_parity, torch_runner


def test_export_stores_the_served_graphs_scores_and_evaluate_reads_them(export_workdir):
    art = export_workdir / "artifacts"
    stored = sorted((art / scores.FOLDER).glob("[0-9a-f]*.npz"))
    assert len(stored) == 2  # the fp32 graph (scored by ONNX Runtime here: no GPU) and INT8
    int8 = TicketClassifier.from_dir(art, int8=True)
    store = scores.LogitStore(art, int8)
    assert store.path in stored
    cfg = load_config([])
    frames = load_splits(cfg)
    # what export gave the INT8 graph: the test split (what evaluate and promote score), as
    # cleaned by the model's transform; val's fp32 scores fit the hybrid, so INT8 skips val
    given = {scores.text_key(t) for t in int8.clean(served_texts(frames["test"]))}
    assert set(store.rows) == given
    exported = json.loads((art / "metrics/onnx_int8.json").read_text())
    assert "val" not in exported and "val" in json.loads((art / "metrics/onnx.json").read_text())

    test = frames["test"]
    fresh = build_report(TicketClassifier.from_dir(art, int8=True), test)
    read_back = TicketClassifier.from_dir(art, int8=True)
    scores.attach(read_back, art)
    report = build_report(read_back, test)
    # the raw rows are the ones export scored: all read back, none run through the graph again
    assert read_back.logit_store.hits >= len(test)
    assert report["models"] == fresh["models"]
    # and the export's own INT8 test figures are evaluate's
    exported = json.loads((art / "metrics/onnx_int8.json").read_text())["test"]
    for t in TASKS:
        assert report["models"]["transformer"][t]["macro_f1"] == exported[t]["macro_f1"]

    # evaluate (the stage) and promote say how much they read back
    assert run_cli("evaluate") == 0
    assert run_cli("register") == 0 and run_cli("promote", "promote.baseline_floor=false") == 0


def test_a_text_the_store_lacks_is_scored_and_added(exported_model, tmp_path):
    classifier = TicketClassifier.from_dir(exported_model / "artifacts", int8=True)
    store = scores.attach(classifier, tmp_path)
    texts = ["VPN is down", "refund my invoice", "VPN is down"]
    first = classifier.logits(texts)
    assert (store.hits, store.misses) == (0, 3) and len(store.rows) == 2
    again = TicketClassifier.from_dir(exported_model / "artifacts", int8=True)
    scores.attach(again, tmp_path)  # a new process: read from the file
    second = again.logits(["refund my invoice", "printer out of toner"])
    assert (again.logit_store.hits, again.logit_store.misses) == (1, 1)
    for t in TASKS:
        np.testing.assert_array_equal(second[t][0], first[t][1])
    assert not list(tmp_path.glob(f"{scores.FOLDER}/*.tmp*"))
    # another graph is another store
    fp32 = TicketClassifier.from_dir(exported_model / "artifacts", int8=False)
    assert scores.LogitStore(tmp_path, fp32).path != store.path
    scores.clear(tmp_path)
    assert not (tmp_path / scores.FOLDER).exists()


def test_the_torch_module_scores_fp32_only_where_it_agrees_with_the_graph(exported_model):
    import os

    cwd = os.getcwd()
    os.chdir(exported_model)
    try:
        cfg = load_config([])
        model = load_checkpoint(cfg)
        frames = load_splits(cfg)
    finally:
        os.chdir(cwd)
    classifier = TicketClassifier.from_dir(exported_model / "artifacts", transformer_only=True)
    runner = torch_runner(model, "cpu")  # the GPU path's code, on the CPU
    checks = runner_parity(classifier, runner, frames, 1e-4)
    assert checks["gpu_vs_graph_max_abs_diff"] <= 1e-4 and classifier.runner is None
    texts = classifier.clean(served_texts(frames["test"].head(50)))
    graph = classifier.run_logits(texts)
    classifier.runner = runner
    torch_logits = classifier.run_logits(texts)
    for t in TASKS:
        np.testing.assert_allclose(torch_logits[t], graph[t], atol=1e-4)

    def off(batch):  # a module that disagrees with the graph is refused
        return [v + 0.01 for v in runner(batch)]

    classifier.runner = None
    with pytest.raises(ModelError, match="disagrees with the ONNX graph"):
        runner_parity(classifier, off, frames, 1e-4)
    assert fp32_device(load_config(["export.fp32_scores=onnx"])) is None
    with pytest.raises(ModelError, match="auto | onnx"):
        fp32_device(load_config(["export.fp32_scores=gpu"]))


def test_on_a_gpu_machine_the_int8_graph_scores_test_beside_the_fp32_work(
    export_workdir, monkeypatch, capsys
):
    """export_onnx where fp32 is the torch module's (a GPU machine's path, here on the CPU):
    INT8 is quantised and scores test in a thread while parity and the fp32 scores run, with
    the same INT8 figures and stored scores as the CPU path's export (the fixture's)."""
    import torch

    import ticketml.export

    art = export_workdir / "artifacts"
    before = json.loads((art / "metrics/onnx_int8.json").read_text())
    monkeypatch.setattr(ticketml.export, "fp32_device", lambda cfg: "cpu")
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "the CPU (test)")
    assert run_cli("export_onnx") == 0
    out = capsys.readouterr().out
    assert "fp32 scores by torch cpu" in out
    lines = [x for x in out.splitlines() if x.startswith("export: ")]
    started = lines.index("export: INT8 quantisation (beside) ...")
    fp32 = next(i for i, x in enumerate(lines) if x.startswith("export: fp32 scores on val"))
    assert started < fp32, lines  # begun before the fp32 scores, not after them
    # named as run beside the others, and the main thread's wait for them a phase of its own
    assert any(x.startswith("export: INT8 graph on test (beside) done in ") for x in lines)
    awaited = lines.index("export: INT8 scores awaited ...")
    assert fp32 < awaited, lines
    assert json.loads((art / "metrics/onnx_int8.json").read_text())["test"] == before["test"]
    int8 = TicketClassifier.from_dir(art, int8=True)
    given = {
        scores.text_key(t) for t in int8.clean(served_texts(load_splits(load_config([]))["test"]))
    }
    assert set(scores.LogitStore(art, int8).rows) == given
    assert run_cli("evaluate") == 0


def test_the_baselines_val_and_test_probabilities_are_stored_once_and_read_back(export_workdir):
    from ticketml.baseline import predict_proba_parallel, tfidf_scorer

    art = export_workdir / "artifacts"
    stored = sorted((art / scores.FOLDER).glob(f"{scores.TFIDF}*.npz"))
    assert len(stored) == 1  # the baseline stage's, kept by export_onnx's clear
    cfg = load_config([])
    frames = load_splits(cfg)
    classifier = TicketClassifier.from_dir(art, int8=True)
    proba = tfidf_scorer(classifier.tfidf, classifier.bundle.path("baseline"), art)
    assert proba.store.path == stored[0]  # the bundle's copy is the stage's file, byte for byte
    assert set(proba.store.rows) == {
        scores.text_key(t) for s in ("val", "test") for t in frames[s]["text"]
    }
    test = frames["test"]
    fresh = build_report(TicketClassifier.from_dir(art, int8=True), test)
    classifier.tfidf_proba = proba
    report = build_report(classifier, test)
    assert proba.store.misses == 0 and proba.store.hits >= 2 * len(test)  # raw and processed
    assert report["models"] == fresh["models"]
    texts = test["text"].head(5).tolist()
    read = proba(texts)
    for t, values in predict_proba_parallel(classifier.tfidf, texts).items():
        np.testing.assert_array_equal(read[t], values)  # float64: exactly what it computes
    # a text it lacks is scored and added; another baseline file is another store
    assert proba(["printer on fire, stack trace attached"])["topic"].shape[0] == 1
    assert proba.store.misses == 1
    other = export_workdir / "other.npz"
    other.write_bytes(classifier.bundle.path("baseline").read_bytes() + b"\0")
    assert tfidf_scorer(classifier.tfidf, other, art).store.path != proba.store.path
    scores.clear(art)  # a new graph's clear keeps the baseline's store
    assert stored[0].is_file() and not list((art / scores.FOLDER).glob("[0-9a-f]*.npz"))
