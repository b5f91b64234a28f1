import re

import pytest

from tests.conftest import run_cli, run_cli_subprocess
from ticketml.cli import COMMANDS, split_args
from ticketml.config import load_config, parse_overrides_option
from ticketml.errors import ConfigError


def test_help_lists_every_command(capsys):
    assert run_cli("--help") == 0
    out = capsys.readouterr().out
    for command in (
        "download_data",
        "preprocess",
        "baseline",
        "train",
        "tune",
        "export_onnx",
        "infer",
        "serve",
    ):
        assert command in out


def test_overrides_in_both_forms_change_the_resolved_config():
    overrides, options, verbose, positional = split_args(
        [
            "prepare",
            "train.max_epochs=7",
            '--overrides=["train.batch_size=8", "seed=3"]',
            "--text=hi there",
            "--verbose",
        ]
    )
    assert options == {"text": "hi there"} and verbose and positional == ["prepare"]
    cfg = load_config(overrides)
    assert (cfg.train.max_epochs, cfg.train.batch_size, cfg.seed) == (7, 8, 3)
    assert load_config().train.max_epochs != 7


def test_public_interface_keys_exist():
    cfg = load_config()
    for key in (
        "data.source",
        "data.path",
        "data.synthetic.n_samples",
        "seed",
        "train.max_epochs",
        "train.batch_size",
        "train.learning_rate",
        "train.accelerator",
        "model.encoder_name",
        "model.freeze_encoder",
        "tune.n_trials",
        "mlflow.tracking_uri",
        "mlflow.experiment_name",
        "registry.model_name",
        "promote.metric",
        "promote.min_delta",
    ):
        node = cfg
        for part in key.split("."):
            assert part in node, key
            node = node[part]


def test_bad_overrides_option_is_a_config_error():
    with pytest.raises(ConfigError):
        parse_overrides_option("[not python")
    with pytest.raises(ConfigError):
        load_config(["train.no_such_key_anywhere.x=1", "+bad=="])


def test_failure_prints_one_error_line_and_exits_nonzero(workdir):
    proc = run_cli_subprocess("preprocess", cwd=workdir)
    assert proc.returncode != 0
    err_lines = [line for line in proc.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(err_lines) == 1 and "download_data" in err_lines[0]
    assert "Traceback" not in proc.stderr
    proc = run_cli_subprocess("no_such_command", cwd=workdir)
    assert proc.returncode != 0 and "ERROR: unknown command" in proc.stderr
    proc = run_cli_subprocess("baseline", "--bogus=1", cwd=workdir)
    assert proc.returncode != 0 and "unknown option --bogus" in proc.stderr


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help_with_its_settings(command, capsys):
    groups = COMMANDS[command].groups
    assert run_cli(command, "--help") == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: ticketml {command}")
    for group in groups:
        assert f"\n  {group}." in out, group
    if "train" in groups:
        assert "train.batch_size = auto  # auto = 32 on the CPU" in out
    if "data" in groups:  # the group's choices are the files of configs/data/
        assert re.search(r"\n  data=.*\bjira_agile\b.*\bsynthetic_long\b.*\(now: synthetic\)", out)
    settings = [line for line in out.splitlines() if re.match(r"  [a-z_]+\.[\w.]+ = ", line)]
    assert not [line for line in settings if "  # " not in line]  # every key has a meaning


def test_help_reads_a_command_without_importing_its_stage():
    """`ticketml train --help` lists train's options and settings without importing the stage
    (lightning and torch took 4-5 s of every --help)."""
    import subprocess
    import sys

    code = (
        "import sys; from ticketml.cli import main\n"
        "assert main(['train', '--help']) == 0 and main(['infer', '--help']) == 0\n"
        "print(sorted(m for m in ('torch', 'lightning', 'transformers', 'onnxruntime') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "usage: ticketml infer [--text=...] [--input_path=...]" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_a_misspelled_key_fails_with_the_closest_valid_one(capsys):
    assert run_cli("train", "train.max_epoch=3") == 1
    err = capsys.readouterr().err.strip()
    assert err == "ERROR: unknown config key 'train.max_epoch' (did you mean train.max_epochs?)"
    assert run_cli("train", "train.num_workers=many") == 1
    assert "bad value in train.num_workers=many" in capsys.readouterr().err
    assert run_cli("train", "train.max_epochs=many") == 1  # an int or auto: checked before MLflow
    err = capsys.readouterr().err
    assert "ERROR: train.max_epochs='many' must be a positive whole number or auto" in err
    assert "mlflow" not in err.lower()


def test_cfg_job_prints_the_resolved_settings(capsys):
    import yaml

    assert run_cli("serve", "--cfg", "job", "infer.min_confidence=0.7") == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["serve"]["min_confidence"] == 0.7  # the interpolation, resolved
    assert set(shown) == {"seed", "serve", "infer", "export", "paths", "mlflow"}
