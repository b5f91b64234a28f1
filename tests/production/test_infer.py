import json

import pandas as pd
import pytest

from tests.conftest import run_cli

COLUMNS = {"predicted_topic", "predicted_priority", "topic_scores", "priority_scores"}


def test_single_text_prints_the_json_contract(export_workdir, capsys):
    assert (
        run_cli(
            "infer", "--text=Не могу подключиться к VPN с ноутбука", "infer.model_uri=artifacts"
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"topic", "priority", "topic_scores", "priority_scores"}
    assert out["topic"] in out["topic_scores"]


@pytest.mark.parametrize("src, dst", [("in.csv", "out.parquet"), ("in.parquet", "out.csv")])
def test_batch_infer_streams_files_with_the_required_columns(export_workdir, src, dst):
    test = pd.read_parquet(export_workdir / "data/processed/test.parquet")
    if src.endswith(".csv"):
        test.to_csv(export_workdir / src, index=False)
    else:
        test.to_parquet(export_workdir / src)
    assert (
        run_cli(
            "infer",
            f"--input_path={src}",
            f"--output_path={dst}",
            "infer.chunk_size=7",
            "infer.model_uri=artifacts",
        )
        == 0
    )
    out = (
        pd.read_parquet(export_workdir / dst)
        if dst.endswith(".parquet")
        else pd.read_csv(export_workdir / dst)
    )
    assert len(out) == len(test) and COLUMNS <= set(out.columns) and "topic" in out.columns
    assert out["text"].tolist() == test["text"].tolist()  # order kept across chunks
    scores = json.loads(out["topic_scores"].iloc[0])
    assert out["predicted_topic"].iloc[0] == max(scores, key=scores.get)


def test_bad_batch_inputs_fail_clearly_and_write_nothing(export_workdir, capsys):
    (export_workdir / "adir.csv").mkdir()
    assert (
        run_cli(
            "infer", "--input_path=adir.csv", "--output_path=o.parquet", "infer.model_uri=artifacts"
        )
        == 1
    )
    assert "is a directory" in capsys.readouterr().err
    pd.DataFrame({"body": ["x"]}).to_csv(export_workdir / "nobody.csv", index=False)
    assert (
        run_cli(
            "infer",
            "--input_path=nobody.csv",
            "--output_path=o.parquet",
            "infer.model_uri=artifacts",
        )
        == 1
    )
    assert "missing column 'text'" in capsys.readouterr().err
    assert not (export_workdir / "o.parquet").exists()
    assert not list(export_workdir.glob(".o.parquet*"))


def test_texts_the_model_refuses_stop_the_run_with_their_row(export_workdir, capsys):
    pd.DataFrame({"text": [3, 7]}).to_parquet(export_workdir / "mixed.parquet")  # numbers
    args = ["--input_path=mixed.parquet", "--output_path=o.csv", "infer.model_uri=artifacts"]
    assert run_cli("infer", *args) == 1
    err = capsys.readouterr().err
    assert "mixed.parquet, row 1 ('text'): the text is a number, not a string" in err
    assert not (export_workdir / "o.csv").exists()
    pd.DataFrame({"text": ["VPN down", "", "ok"]}).to_csv(export_workdir / "gap.csv", index=False)
    assert (
        run_cli(
            "infer",
            "--input_path=gap.csv",
            "--output_path=o.csv",
            "infer.chunk_size=2",
            "infer.model_uri=artifacts",
        )
        == 1
    )
    assert "gap.csv, row 2 ('text'): the text is empty" in capsys.readouterr().err
    assert (
        run_cli(
            "infer", "--input_path=gap.csv", "--output_path=gap.csv", "infer.model_uri=artifacts"
        )
        == 1
    )
    assert "is the input file" in capsys.readouterr().err
    assert run_cli("infer", "--text=\u200b", "infer.model_uri=artifacts") == 1


def test_an_unreadable_file_is_named_before_the_model_loads(export_workdir, capsys, monkeypatch):
    import ticketml.infer

    loader = ticketml.infer.load_predictor

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the input was checked")

    monkeypatch.setattr(ticketml.infer, "load_predictor", no_model)
    (export_workdir / "latin.csv").write_bytes("text\nCafé: VPN down\n".encode("latin-1"))
    (export_workdir / "empty.csv").write_bytes(b"")
    (export_workdir / "nocol.csv").write_text("body\nhello\n")
    for name, message in (
        ("latin.csv", "latin.csv: not utf-8 text (byte b'\\xe9'); give its encoding"),
        ("empty.csv", "empty.csv: the file is empty (no header row)"),
        ("nocol.csv", "nocol.csv: missing column 'text' (columns found: ['body'])"),
    ):
        assert run_cli("infer", f"--input_path={name}", "--output_path=out.csv") == 1
        assert message in capsys.readouterr().err, name
        assert not (export_workdir / "out.csv").exists()
    monkeypatch.setattr(ticketml.infer, "load_predictor", loader)
    assert (
        run_cli("infer", "--input_path=latin.csv", "--output_path=out.csv", "--encoding=latin-1")
        == 0
    )
    assert pd.read_csv(export_workdir / "out.csv")["text"].tolist() == ["Café: VPN down"]
    # --encoding=auto: what reads the whole file, said once; an export from Windows is cp1252
    (export_workdir / "windows.csv").write_bytes("text\nInvoice 50 € — VPN\n".encode("cp1252"))
    (export_workdir / "utf8.csv").write_text("text\nПривет: VPN\n", encoding="utf-8")
    (export_workdir / "old.csv").write_bytes(b"text\nCaf\xe9 \x81 VPN\n")  # 0x81: not cp1252
    for name, chosen, text in (
        ("windows.csv", "cp1252", "Invoice 50 € — VPN"),
        ("utf8.csv", "utf-8", "Привет: VPN"),
        ("old.csv", "latin-1", "Café \x81 VPN"),
    ):
        out = f"{name}.out.csv"
        assert (
            run_cli("infer", f"--input_path={name}", f"--output_path={out}", "--encoding=auto") == 0
        )
        assert f"as {chosen} (--encoding=auto)" in capsys.readouterr().out, name
        assert pd.read_csv(export_workdir / out)["text"].tolist() == [text], name


def test_the_progress_bar_total_counts_rows_not_lines(tmp_path):
    from ticketml.infer import count_rows

    path = tmp_path / "in.csv"
    path.write_text('text,id\n"Traceback:\n  File x\n  line 3",1\nplain,2\n"a, b",3\n')
    assert count_rows(path) == 3
    path.write_text("text\n" + '"' + "x" * 200_000 + '"\n')  # over the csv module's field limit
    assert count_rows(path) is None
