"""Fault injection on the output and registry side: a failed write or a half-way promote leaves
nothing half-done behind."""

import errno
import os

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from tests.conftest import run_cli
from tools.faults import infer_with_file_size_limit


@pytest.mark.parametrize("dst", ["scored.csv", "scored.parquet"])
def test_disk_full_while_streaming_output_fails_clearly_and_keeps_the_old_file(export_workdir, dst):
    """A real process whose writes stop at 64 KiB (RLIMIT_FSIZE, as on a full disk): the chunked
    output dies half-way; the error names the file, and the previous output is left untouched."""
    test = pd.read_parquet(export_workdir / "data/processed/test.parquet")
    pd.concat([test] * 20).to_parquet(export_workdir / "big.parquet")
    (export_workdir / dst).write_text("previous output\n")
    proc = infer_with_file_size_limit(
        export_workdir, "big.parquet", dst, "artifacts", 50, 64 * 1024, 300
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    error = proc.stderr.strip().splitlines()[-1]
    assert error.startswith(f"ERROR: cannot write {dst}: ") and "File too large" in error, error
    assert (export_workdir / dst).read_text() == "previous output\n"
    assert not [p for p in os.listdir(export_workdir) if p.endswith(".tmp")]


def test_permission_denied_on_output_fails_clearly_and_writes_nothing(
    export_workdir, monkeypatch, capsys
):
    """The final rename is refused (a read-only folder as non-root): no output, no temp file."""
    import ticketml.io

    def refuse(src, dst):
        raise PermissionError(errno.EACCES, "Permission denied", str(dst))

    monkeypatch.setattr(ticketml.io.os, "replace", refuse)
    test = pd.read_parquet(export_workdir / "data/processed/test.parquet")
    test.to_csv(export_workdir / "in.csv", index=False)
    args = ["--input_path=in.csv", "--output_path=out/scored.parquet", "infer.model_uri=artifacts"]
    assert run_cli("infer", *args) == 1
    assert "ERROR: cannot write out/scored.parquet: Permission denied" in capsys.readouterr().err
    assert os.listdir(export_workdir / "out") == []


@pytest.mark.slow
def test_promote_failing_half_way_leaves_the_aliases_as_they_were(
    export_workdir, monkeypatch, capsys
):
    mlflow.set_tracking_uri(f"sqlite:///{export_workdir}/mlflow.db")
    client = MlflowClient()
    assert run_cli("register") == 0 and run_cli("promote", "promote.baseline_floor=false") == 0
    assert run_cli("register") == 0  # version 2 is @challenger, version 1 @champion

    def unreachable(self, *args, **kwargs):
        raise MlflowException("API request to http://registry:5000 failed: Connection refused")

    capsys.readouterr()
    with monkeypatch.context() as m:  # the registry goes away after the challenger was tagged
        m.setattr(MlflowClient, "update_model_version", unreachable)
        assert run_cli("promote", "promote.baseline_floor=false", "promote.min_delta=-1") == 1
    err = capsys.readouterr().err
    assert "promote stopped half-way" in err and "Connection refused" in err
    assert "aliases unchanged (@champion version 1" in err
    assert client.get_model_version_by_alias("ticketml", "champion").version == 1
    assert client.get_model_version_by_alias("ticketml", "challenger").version == 2
    # the registry is back: the same promote now goes through
    assert run_cli("promote", "promote.baseline_floor=false", "promote.min_delta=-1") == 0
    assert client.get_model_version_by_alias("ticketml", "champion").version == 2
