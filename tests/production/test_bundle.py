"""pyfunc.bundle, the one owner of the served model's files: what it holds, its copy, its errors."""

import json
import shutil

import pytest

from pyfunc.bundle import FILES, ONNX_FP32, ONNX_INT8, copy_served, load
from pyfunc.core import TicketClassifier

TEXTS = ["VPN drops every hour\n    at com.acme.vpn.Tunnel.open(Tunnel.java:42)", "refund please"]


def test_the_export_names_its_files_and_the_copy_holds_exactly_those(exported_model, tmp_path):
    art = exported_model / "artifacts"
    config = json.loads((art / FILES["model_config"]).read_text())
    bundle = load(art, int8=None)
    assert bundle.files == config["files"]  # what export_onnx published is what load resolves
    assert bundle.hybrid and bundle.graph in (ONNX_FP32, ONNX_INT8)
    assert {FILES["baseline"], FILES["hybrid"], FILES["tokenizer"]} <= set(bundle.files)
    assert (art / "metrics").is_dir()  # the export folder holds more than the bundle...
    copy = copy_served(art, tmp_path / "copy")
    assert sorted(p.name for p in (tmp_path / "copy").iterdir()) == sorted(bundle.files)
    assert copy.graph == bundle.graph
    # ...and the copy serves the same predictions as the export folder
    want = TicketClassifier.from_dir(art, int8=None).predict(TEXTS)
    assert TicketClassifier.from_dir(tmp_path / "copy", int8=None).predict(TEXTS) == want


def test_asking_for_the_other_graph_rewrites_the_copys_file_list(exported_model, tmp_path):
    art = exported_model / "artifacts"
    assert (art / ONNX_INT8).is_file() and (art / ONNX_FP32).is_file()  # export.quantize=true
    other = ONNX_FP32 if load(art, int8=None).graph == ONNX_INT8 else ONNX_INT8
    copy = copy_served(art, tmp_path / "copy", int8=other == ONNX_INT8)
    assert copy.graph == other and copy.files[0] == other
    config = json.loads((tmp_path / "copy" / FILES["model_config"]).read_text())
    assert config["files"] == copy.files and not (tmp_path / "copy" / load(art).graph).exists()


def test_a_hybrid_without_its_tfidf_half_is_refused_naming_the_file(exported_model, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(exported_model / "artifacts", broken)
    (broken / FILES["baseline"]).unlink()
    with pytest.raises(FileNotFoundError, match="baseline.npz: missing; model_config.json says"):
        load(broken)
    alone = load(broken, transformer_only=True)  # what export scores: the graph alone
    assert not alone.hybrid and FILES["baseline"] not in alone.files
    (broken / FILES["tokenizer"]).unlink()
    with pytest.raises(FileNotFoundError, match="tokenizer.json: missing"):
        load(broken, transformer_only=True)


def _copy(exported_model, tmp_path):
    d = tmp_path / "model"
    shutil.copytree(exported_model / "artifacts", d)
    return d


def test_every_load_answers_the_smoke_examples_and_a_short_label_map_is_refused(
    exported_model, tmp_path
):
    d = _copy(exported_model, tmp_path)
    smoke = json.loads((d / FILES["smoke"]).read_text())
    assert smoke["graph"] == load(d, int8=None).graph and len(smoke["texts"]) >= 10
    clf = TicketClassifier.from_dir(d, int8=None)
    got = clf.predict(smoke["texts"])
    assert [r["topic"] for r in got] == smoke["topic"]  # as exported, on this machine
    # a label map one topic short (issue 25: it loaded, said ready and 500-ed every request)
    maps = json.loads((d / FILES["label_maps"]).read_text())
    maps["topic"] = maps["topic"][:-1]
    (d / FILES["label_maps"]).write_text(json.dumps(maps))
    with pytest.raises(ValueError, match="smoke.json: the model cannot answer its own examples"):
        TicketClassifier.from_dir(d, int8=None)


def test_a_sure_answer_that_changed_is_refused_and_an_unsure_one_is_not(exported_model, tmp_path):
    d = _copy(exported_model, tmp_path)
    smoke = json.loads((d / FILES["smoke"]).read_text())
    topics = json.loads((d / FILES["label_maps"]).read_text())["topic"]
    other = next(t for t in topics if t != smoke["topic"][0])
    changed = {**smoke, "topic": [other, *smoke["topic"][1:]]}
    (d / FILES["smoke"]).write_text(
        json.dumps({**changed, "sure": [i for i in smoke["sure"] if i]})
    )
    TicketClassifier.from_dir(d, int8=None)  # example 0 is not a sure one: not checked
    (d / FILES["smoke"]).write_text(json.dumps({**changed, "sure": [0]}))
    with pytest.raises(ValueError, match=f"1 of 2 sure answers differ.*exported '{other}'"):
        TicketClassifier.from_dir(d, int8=None)


def test_a_pool_weighing_the_training_tickets_serves_their_votes_and_needs_their_file(
    exported_model, tmp_path
):
    import pandas as pd

    from tests.conftest import weigh_training_votes

    d = _copy(exported_model, tmp_path)
    train = pd.read_parquet(exported_model / "data" / "processed" / "train.parquet")
    hybrid = weigh_training_votes(d, train)
    # tickets copied from the training split: their nearest neighbour is themselves, and with
    # the votes weighing this much each gets the topic its copy was labelled with
    rows = train.drop_duplicates("text").groupby("topic").head(1)
    clf = TicketClassifier.from_dir(d, int8=None)
    got = clf.predict(rows["text"].tolist())
    assert [r["topic"] for r in got] == rows["topic"].tolist()
    assert FILES["neighbours"] in load(d).files
    copy = copy_served(d, tmp_path / "copy")  # what register logs and Docker bakes in
    assert FILES["neighbours"] in copy.files
    assert TicketClassifier.from_dir(tmp_path / "copy", int8=None).predict(TEXTS) == clf.predict(
        TEXTS
    )
    # without the votes' weight the same pool answers otherwise on some of them
    hybrid["topic"]["neighbour_weight"] = 0.0
    (d / FILES["hybrid"]).write_text(json.dumps(hybrid))
    plain = TicketClassifier.from_dir(d, int8=None).predict(rows["text"].tolist())
    assert [r["topic_scores"] for r in plain] != [r["topic_scores"] for r in got]
    hybrid["topic"]["neighbour_weight"] = 20.0
    (d / FILES["hybrid"]).write_text(json.dumps(hybrid))
    (d / FILES["neighbours"]).unlink()
    with pytest.raises(FileNotFoundError, match="neighbours.npz: missing; hybrid.json weighs"):
        TicketClassifier.from_dir(d, int8=None)
