"""Served = evaluated: raw tickets get the same labels and scores (1e-6) through every serving
path as through the exported model that `evaluate` scores.

Paths: mlflow.pyfunc.load_model in a fresh process, `mlflow models serve` /invocations, FastAPI
(`ticketml serve`) /predict and /predict/batch, `ticketml infer` on CSV and Parquet,
`ticketml score_spark`, and the Docker build (the context .dockerignore lets through, then the
Dockerfile's pyfunc.bundle.copy_served: exactly the files the model config names, and they load
and predict alike)."""

import fnmatch
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pandas as pd
import pytest

from pyfunc.bundle import copy_served
from tests.conftest import REPO, free_port, run_cli, spawn, wait_for
from tests.e2e.test_servers import mlflow_serve_cmd

RAW = [
    "<p>VPN&nbsp;is <b>down</b> since 9:00</p>",
    "Refund &amp; invoice please: mail billing@acme.example or call +1 (555) 123-4567",
    "See https://portal.acme.example/billing/invoices/123?id=9 - charged twice",
    "Не могу подключиться к VPN с ноутбука",
    "<div></div>",  # empty after the transform
    "tab\tnew\nline    spaces &lt;tag&gt;",
    "Stack trace:\n" + "\tat com.acme.billing.InvoiceService.run(InvoiceService.java:12)\n" * 250,
    "NUL\x00inside",  # cleaned to a space on every path; CSV cannot hold it
    "lone \ud800 surrogate",  # refused on every path that parses JSON; CSV and Parquet cannot hold it
    "x" * 30_000 + " VPN down",  # over the transform's max_chars: cut to its two ends everywhere
]
NUL, SURROGATE, LONG = 7, 8, 9
HOSTILE_TEXTS = {"empty": "", "blank": " \t\n", "NUL-only": "\x00", "zero-width": "\u200b"}
KEYS = ("topic", "priority")


def assert_same(got: list[dict], want: list[dict], path: str) -> None:
    assert len(got) == len(want), path
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        for task in KEYS:
            assert g[task] == w[task], (path, i, task)
            scores = g[f"{task}_scores"]
            scores = json.loads(scores) if isinstance(scores, str) else scores
            assert set(scores) == set(w[f"{task}_scores"]), (path, i)
            worst = max(abs(scores[k] - v) for k, v in w[f"{task}_scores"].items())
            assert worst <= 1e-6 + 1e-12, (path, i, task, worst)  # scores are rounded to 1e-6


def scored_rows(out: pd.DataFrame) -> list[dict]:
    """The predictions in a scored table (`infer`, `score_spark`), as the core returns them."""
    return [
        {
            "topic": r.predicted_topic,
            "priority": r.predicted_priority,
            "topic_scores": r.topic_scores,
            "priority_scores": r.priority_scores,
        }
        for r in out.itertuples()
    ]


def docker_context(root: Path) -> list[Path]:
    """The files `docker build` would send, by .dockerignore (last matching line wins)."""
    patterns = [p.strip() for p in (root / ".dockerignore").read_text().splitlines()]
    patterns = [p for p in patterns if p and not p.startswith("#")]
    included = []
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        rel, keep = path.relative_to(root).as_posix(), True
        for pattern in patterns:
            negate, pat = pattern.startswith("!"), pattern.lstrip("!").rstrip("/")
            parts = rel.split("/")
            prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
            if any(fnmatch.fnmatch(p, pat) for p in prefixes) or (
                pat.startswith("**/") and any(fnmatch.fnmatch(x, pat[3:]) for x in parts)
            ):
                keep = negate
        if keep:
            included.append(path)
    return included


@pytest.mark.slow
def test_raw_tickets_score_the_same_through_every_serving_path(export_workdir):
    from pyfunc.core import TicketClassifier

    work = export_workdir
    # The fp32 graph: INT8's dynamic quantisation scales activations per batch, so its scores
    # move (labels do not) with the batch a ticket is scored in; see test_export.
    assert run_cli("export_onnx", "export.use_int8=false") == 0
    assert run_cli("register") == 0 and run_cli("promote", "promote.baseline_floor=false") == 0
    reference = TicketClassifier.from_dir(work / "artifacts").predict(RAW)
    assert reference[4]["topic"]  # empty after cleaning is still scored
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{work}/mlflow.db"}

    # 1. pyfunc in a fresh process (the registry's bundled code, nothing imported before)
    accepted = [i for i in range(len(RAW)) if i != SURROGATE]
    (work / "raw.json").write_text(json.dumps([RAW[i] for i in accepted]))
    (work / "hostile.json").write_text(json.dumps([*HOSTILE_TEXTS.values(), None, 42]))
    code = (
        "import json, mlflow, pandas as pd\n"
        "m = mlflow.pyfunc.load_model('models:/ticketml@champion')\n"
        "for bad in json.load(open('hostile.json')):\n"
        "    try:\n"
        "        m.predict(pd.DataFrame({'text': pd.Series([bad], dtype=object)}))\n"
        "        print('ACCEPTED', repr(bad))\n"
        "    except Exception as exc:\n"
        "        print('REFUSED', str(exc).splitlines()[0])\n"
        "texts = json.load(open('raw.json'))\n"
        "print(m.predict(pd.DataFrame({'text': pd.Series(texts, dtype=object)})).to_json(orient='records'))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    verdicts = [line for line in lines if line.startswith(("REFUSED", "ACCEPTED"))]
    assert verdicts == [
        "REFUSED text is empty",
        "REFUSED text is empty",
        "REFUSED text is empty",
        "REFUSED text is empty",
        "REFUSED text is null, not a string",
        "REFUSED text is a number, not a string",
    ], verdicts
    assert_same(json.loads(lines[-1]), [reference[i] for i in accepted], "pyfunc")

    # 2. mlflow models serve, the JSON of the raw rows (surrogates as \\u escapes)
    port = free_port()
    server = spawn(mlflow_serve_cmd(port), cwd=work, env=env)
    try:
        wait_for(f"http://127.0.0.1:{port}/ping", server, timeout=180)

        def invocations(texts):
            payload = {"dataframe_split": {"columns": ["text"], "data": [[t] for t in texts]}}
            return httpx.post(  # json.dumps escapes a lone surrogate as \ud800
                f"http://127.0.0.1:{port}/invocations",
                content=json.dumps(payload),
                headers={"Content-Type": "application/json"},
                timeout=120,
            )

        answer = invocations([RAW[i] for i in accepted])
        assert answer.status_code == 200, answer.text
        assert_same(answer.json()["predictions"], [reference[i] for i in accepted], "mlflow serve")
        # MLflow's own parsing (pandas) refuses a lone surrogate: a 400 that says so
        refused = invocations([RAW[SURROGATE]])
        assert refused.status_code == 400 and "surrogates" in refused.text
        # what FastAPI refuses, /invocations refuses too (the model's own contract): a 400
        for name, bad in [*HOSTILE_TEXTS.items(), ("null", None)]:
            refused = invocations([bad])
            assert refused.status_code == 400, (name, refused.text)
            assert "text is" in refused.json()["message"], (name, refused.text)
    finally:
        server.terminate()
        server.wait(timeout=30)

    # 3. FastAPI: the rows the API accepts, one by one and as a batch; the others get a 4xx
    port = free_port()
    api = spawn(
        [sys.executable, "-m", "ticketml", "serve", f"--port={port}"],
        cwd=work,
        env=env,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        ready = wait_for(f"{base}/ready", api, timeout=180).json()
        assert ready["model_version"] == "1"
        api_rows = [i for i in accepted if i != LONG]  # over serve.max_text_chars: a 413
        single = []
        for i in api_rows:
            r = httpx.post(f"{base}/predict", json={"text": RAW[i]}, timeout=60)
            assert r.status_code == 200 and r.headers["X-Model-Version"] == "1", r.text
            single.append(r.json())
        assert_same(single, [reference[i] for i in api_rows], "FastAPI /predict")
        batch = httpx.post(
            f"{base}/predict/batch", json={"texts": [RAW[i] for i in api_rows]}, timeout=60
        )
        assert_same(batch.json()["predictions"], [reference[i] for i in api_rows], "/predict/batch")
        assert httpx.post(f"{base}/predict", json={"text": RAW[LONG]}).status_code == 413
        body = json.dumps({"text": RAW[SURROGATE]})
        headers = {"Content-Type": "application/json"}
        assert httpx.post(f"{base}/predict", content=body, headers=headers).status_code == 422
        for name, bad in [*HOSTILE_TEXTS.items(), ("null", None)]:
            r = httpx.post(f"{base}/predict", json={"text": bad}, timeout=60)
            assert r.status_code == 422, (name, r.text)
    finally:
        api.terminate()
        api.wait(timeout=30)

    # 4. ticketml infer, CSV and Parquet (each with the rows the format can hold)
    for name, rows in (("in.csv", [i for i in accepted if i != NUL]), ("in.parquet", accepted)):
        frame = pd.DataFrame({"id": rows, "text": [RAW[i] for i in rows]})
        if name.endswith(".csv"):
            frame.to_csv(work / name, index=False)
        else:
            frame.to_parquet(work / name, index=False)
        assert run_cli("infer", f"--input_path={name}", f"--output_path=out_{name}") == 0
        out = (
            pd.read_csv(work / f"out_{name}", keep_default_na=False)
            if name.endswith(".csv")
            else pd.read_parquet(work / f"out_{name}")
        )
        got = scored_rows(out)
        assert_same(got, [reference[i] for i in out["id"]], f"infer {name}")
    # a file with a text the model refuses stops with the file and row, and writes nothing
    pd.DataFrame({"text": ["VPN down", " \u200b "]}).to_parquet(work / "bad.parquet", index=False)
    assert run_cli("infer", "--input_path=bad.parquet", "--output_path=out_bad.csv") == 1
    assert not (work / "out_bad.csv").exists()

    # 5. score_spark on the Parquet rows
    if importlib.util.find_spec("pyspark") and (
        shutil.which("java") or os.environ.get("JAVA_HOME")
    ):
        assert (
            run_cli(
                "score_spark",
                "--input_path=in.parquet",
                "--output_path=spark_out.parquet",
                "spark.master='local[1]'",
            )
            == 0
        )
        out = pd.read_parquet(work / "spark_out.parquet").sort_values("id")
        got = scored_rows(out)
        assert_same(got, [reference[i] for i in out["id"]], "score_spark")
    elif os.environ.get("TICKETML_REQUIRE_SPARK") == "1":
        pytest.fail("pyspark or Java missing, and TICKETML_REQUIRE_SPARK=1")

    # 6. Docker: the build context (this repository + the export) holds every file the model
    # config names; the image gets those files alone (copy_served), which predict the same
    context = work / "docker_context"
    context.mkdir()
    for name in (".dockerignore", "requirements-serve.txt", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, context / name)
    for folder in ("ticketml", "pyfunc"):  # the configs are in the package
        shutil.copytree(
            REPO / folder, context / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copytree(work / "artifacts", context / "artifacts")
    (context / "artifacts" / "stray.txt").write_text("not for the image")
    sent = {p.relative_to(context).as_posix() for p in docker_context(context)}
    config = json.loads((context / "artifacts/model_config.json").read_text())
    assert config["hybrid"] and {f"artifacts/{f}" for f in config["files"]} <= sent
    assert "model.onnx" in config["files"] and "model.int8.onnx" not in config["files"]
    assert "ticketml/serving/app.py" in sent and not any("/.scores/" in f for f in sent)
    build = work / "build"  # the Dockerfile's build stage: the context, then copy_served
    for rel in sent:
        (build / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(context / rel, build / rel)
    image = work / "image"
    copy_served(build / "artifacts", image / "artifacts")
    assert sorted(p.name for p in (image / "artifacts").iterdir()) == sorted(config["files"])
    assert "copy_served('artifacts', '/served')" in (REPO / "Dockerfile").read_text()
    in_image = TicketClassifier.from_dir(image / "artifacts").predict(RAW)
    assert_same(in_image, reference, "docker context")
    (image / "artifacts/baseline.npz").unlink()  # a hybrid without its TF-IDF half: a clear error
    with pytest.raises(FileNotFoundError, match="baseline.npz: missing"):
        TicketClassifier.from_dir(image / "artifacts")


@pytest.mark.slow
def test_a_model_with_its_token_layer_serves_its_pool_alike_on_every_server(
    data_workdir, tiny_encoder
):
    """What a GPU trains by default (model.lexical=auto: the token layer; model.combiner=auto:
    then the pool), trained here on the CPU with model.lexical=true: FastAPI and `mlflow models
    serve` answer the exported core's labels and scores (1e-6) on the raw tickets."""
    from pyfunc.core import TicketClassifier
    from tests.conftest import tiny_overrides

    work = data_workdir
    overrides = [*tiny_overrides(tiny_encoder, epochs=2), "model.lexical=true"]
    assert run_cli("baseline", "baseline.max_features=3000") == 0
    assert run_cli("train", *overrides) == 0
    assert run_cli("export_onnx", *overrides, "export.use_int8=false") == 0
    hybrid = json.loads((work / "artifacts/hybrid.json").read_text())
    assert {hybrid[t]["method"] for t in KEYS} == {"pool"}
    assert run_cli("register") == 0 and run_cli("promote", "promote.baseline_floor=false") == 0
    texts = [t for i, t in enumerate(RAW) if i not in (SURROGATE, LONG)]
    reference = TicketClassifier.from_dir(work / "artifacts").predict(texts)
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{work}/mlflow.db"}

    port = free_port()
    api = spawn([sys.executable, "-m", "ticketml", "serve", f"--port={port}"], cwd=work, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(f"{base}/ready", api, timeout=180)
        single = [httpx.post(f"{base}/predict", json={"text": t}, timeout=60) for t in texts]
        assert all(r.status_code == 200 for r in single), [r.text for r in single]
        assert_same([r.json() for r in single], reference, "FastAPI /predict")
        assert httpx.post(f"{base}/predict", json={"text": " \t"}).status_code == 422
    finally:
        api.terminate()
        api.wait(timeout=30)

    port = free_port()
    server = spawn(mlflow_serve_cmd(port), cwd=work, env=env)
    try:
        wait_for(f"http://127.0.0.1:{port}/ping", server, timeout=180)
        payload = {"dataframe_split": {"columns": ["text"], "data": [[t] for t in texts]}}
        answer = httpx.post(f"http://127.0.0.1:{port}/invocations", json=payload, timeout=120)
        assert answer.status_code == 200, answer.text
        assert_same(answer.json()["predictions"], reference, "mlflow models serve")
    finally:
        server.terminate()
        server.wait(timeout=30)
