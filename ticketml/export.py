"""export_onnx: best checkpoint → ONNX (dynamic batch/sequence), parity check, optional INT8."""

from __future__ import annotations

import logging
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from pyfunc.bundle import FILES, ONNX_FP32, ONNX_INT8, load, publish
from pyfunc.core import TicketClassifier, decide_tasks, hybrid_proba, scaling_of
from pyfunc.text import scripts as text_scripts
from ticketml import TASKS, scores
from ticketml.calibration import ece
from ticketml.clock import startup_seconds
from ticketml.contract import BEST_CHECKPOINT, DATA_REPORT, artifact, load_splits
from ticketml.data.schema import encode_labels, served_texts
from ticketml.errors import ModelError
from ticketml.io import atomic_path, read_json, write_json
from ticketml.metrics import flat_metrics, score
from ticketml.training.module import MultiTaskClassifier

log = logging.getLogger(__name__)


class LogitsOnly(torch.nn.Module):
    """(input_ids, attention_mask) → (topic_logits, priority_logits) for tracing."""

    def __init__(self, model: MultiTaskClassifier):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        logits = self.model(input_ids, attention_mask)
        return tuple(logits[t] for t in TASKS)


def load_checkpoint(cfg: DictConfig) -> MultiTaskClassifier:
    path = Path(cfg.paths.checkpoints_dir) / BEST_CHECKPOINT
    if not path.is_file():
        raise ModelError(
            f"{path}: no trained model (run `ticketml train` or `ticketml tune` first)"
        )
    model = MultiTaskClassifier.load_from_checkpoint(path, map_location="cpu")
    return model.eval()


def trained_text_transform(cfg: DictConfig) -> dict[str, bool]:
    """The text transform the training data went through (recorded by preprocess)."""
    from pyfunc.text import text_options

    report = artifact(cfg, DATA_REPORT)
    transform = read_json(report).get("text_transform") if report.is_file() else None
    if transform is None:
        raise ModelError(
            f"{report} does not say which text transform the training data had: rerun "
            "`ticketml preprocess` (and the stages after it)"
        )
    return text_options(transform)


def write_serving_files(model: MultiTaskClassifier, out_dir: Path, cfg: DictConfig) -> None:
    """tokenizer.json, label_maps.json and model_config.json: what the pyfunc core needs beside
    the graph, the text transform and whether the model is a hybrid included."""
    from ticketml.encoder import load_tokenizer

    hp = model.hparams
    tokenizer = load_tokenizer(hp.encoder_name)
    with atomic_path(out_dir / FILES["tokenizer"]) as tmp:
        tokenizer.backend_tokenizer.save(str(tmp))
    write_json(hp.label_maps, out_dir / FILES["label_maps"])
    write_json(
        {
            "max_length": int(hp.max_length),
            "text_prefix": hp.text_prefix,
            "truncation": hp.get("truncation", "head"),
            "head_tokens": int(hp.get("head_tokens", 0)),
            "pad_id": int(tokenizer.pad_token_id),
            "pad_token": tokenizer.pad_token,
            "encoder_name": hp.encoder_name,
            "tasks": list(TASKS),
            "text_transform": trained_text_transform(cfg),
            "hybrid": bool(cfg.model.hybrid),
        },
        out_dir / FILES["model_config"],
    )


def export_graph(model: MultiTaskClassifier, path: Path, opset: int) -> None:
    # batch 2 and a sequence length of 17: no special sizes, so both axes stay dynamic
    ids = torch.randint(1000, 2000, (2, 17))
    mask = torch.ones_like(ids)
    mask[1, 11:] = 0
    with atomic_path(path) as tmp, torch.no_grad():
        torch.onnx.export(
            LogitsOnly(model).eval(),
            (ids, mask),
            str(tmp),
            input_names=["input_ids", "attention_mask"],
            output_names=[f"{t}_logits" for t in TASKS],
            opset_version=opset,
            dynamo=False,
            dynamic_axes={
                "input_ids": {0: "batch", 1: "sequence"},
                "attention_mask": {0: "batch", 1: "sequence"},
                **{f"{t}_logits": {0: "batch"} for t in TASKS},
            },
        )


def parity(model: MultiTaskClassifier, classifier, texts: list[str]) -> dict[str, float]:
    """Max |logit diff| and argmax agreement, torch vs ONNX Runtime, on the same encoded batch."""
    batch = classifier.encode(texts)
    model.eval()
    with torch.no_grad():
        ref = model(torch.from_numpy(batch["input_ids"]), torch.from_numpy(batch["attention_mask"]))
    got = dict(zip(TASKS, classifier.session.run(classifier.output_names, batch), strict=True))
    return agreement({t: ref[t].numpy() for t in TASKS}, got)


def agreement(expected: dict[str, np.ndarray], got: dict[str, np.ndarray]) -> dict[str, float]:
    """Per task, the max |logit difference| and the argmax agreement of two sets of logits."""
    out = {}
    for task in TASKS:
        out[f"{task}_max_abs_diff"] = float(np.abs(expected[task] - got[task]).max())
        out[f"{task}_argmax_agreement"] = float(
            (expected[task].argmax(1) == got[task].argmax(1)).mean()
        )
    return out


def worst_of(checks: dict[str, float]) -> tuple[float, float]:
    """(the largest difference, the lowest agreement) over the tasks of `agreement`."""
    return (
        max(checks[f"{t}_max_abs_diff"] for t in TASKS),
        min(checks[f"{t}_argmax_agreement"] for t in TASKS),
    )


def parity_texts(frames: dict, n: int, seed: int) -> list[str]:
    """`n` test rows plus a very short and a truncated text (lengths vary widely)."""
    test = frames["test"]["text"]
    return [*test.sample(n=min(n, len(test)), random_state=seed).tolist(), "ok", "VPN " * 400]


EVAL_SPLITS = ("val", "test")


def phase(name: str, fn, *args):
    """Run one export phase, saying what it is and how long it took."""
    started = time.perf_counter()
    print(f"export: {name} ...", flush=True)
    result = fn(*args)
    done(name, started)
    return result


def done(name: str, started: float) -> None:
    """The line bench/scale.py and bench/report.py read a phase's time from."""
    print(f"export: {name} done in {time.perf_counter() - started:.1f} s", flush=True)


def graph_probs(
    classifier, texts: dict[str, list[str]], splits: tuple[str, ...] = EVAL_SPLITS
) -> dict[str, tuple[dict, dict]]:
    """A graph's (tempered, calibrated) probabilities for `splits`, computed once per graph
    (see TicketClassifier.transformer_parts); `texts`: each split's raw rows through the
    bundle's text transform (the same for both graphs: cleaned once, build_bundle)."""
    return {s: classifier.transformer_parts(texts[s]) for s in splits}


def build_hybrid(
    cfg: DictConfig,
    tempered: dict,
    staging: Path,
    frames: dict,
    label_maps: dict,
    scripts: dict,
    texts: dict,
    baseline_product: bool = False,
    lexical: bool = False,
) -> tuple[dict, dict, dict]:
    """baseline.npz (the file `ticketml baseline` saved, checked against scikit-learn there) and
    hybrid.json (per task the combination model.combiner names, and the hybrid's calibration
    map, fitted on val against the fp32 graph's `tempered` probabilities: ticketml.hybrid; a
    product where the transformer was trained inside one, `baseline_product`; `lexical`: it has
    its token layer, which combiner=auto pools) in `staging`; a pool with `model.neighbours`
    also weighs the training tickets' votes where they help on val (neighbours.npz, the index
    of the texts the baseline was fitted on). `texts`: val's and test's as the graph saw them,
    `scripts` theirs. Returns them, the baseline's val/test probabilities and the votes per
    split (task -> votes of the tasks that weigh them)."""
    from ticketml.baseline import baseline_path, load_baseline, tfidf_scorer
    from ticketml.hybrid import build_neighbours, combiner_for, fit_hybrid, search_split

    tfidf = load_baseline(cfg)
    if tfidf.labels != {t: list(label_maps[t]) for t in TASKS}:
        raise ModelError(
            f"the baseline was fitted with other labels ({tfidf.labels}) than the model "
            f"({label_maps}): rerun `ticketml baseline`"
        )
    shutil.copyfile(baseline_path(cfg), staging / FILES["baseline"])
    proba = tfidf_scorer(tfidf, baseline_path(cfg), cfg.paths.artifacts_dir)  # the stage's
    base = {s: proba(frames[s]["text"].tolist()) for s in EVAL_SPLITS}
    log.info("baseline: %d val + test texts' probabilities read back", proba.store.hits)
    combiner = combiner_for(str(cfg.model.combiner), bool(baseline_product), bool(lexical))
    index = found = None
    if combiner == "pool" and cfg.model.neighbours:
        index = build_neighbours(tfidf.features, frames["train"], label_maps)
        found = {"val": search_split(index, tfidf.features, texts["val"])}
    weights = fit_hybrid(
        tempered["val"],
        base["val"],
        encode_labels(frames["val"], label_maps),
        combiner,
        int(cfg.seed),
        scripts["val"],
        index and (index, found["val"]),
    )
    write_json(weights, staging / FILES["hybrid"])
    votes = {s: {} for s in EVAL_SPLITS}
    if any(w.get("neighbour_weight") for w in weights.values()):
        index.save(staging / FILES["neighbours"])
        found["test"] = search_split(index, tfidf.features, texts["test"])
        votes = {s: index.votes_for(weights, found[s]) for s in EVAL_SPLITS}
    for t in TASKS:
        log.info("hybrid %s: %s (cv macro-F1 %s)", t, weights[t]["method"], weights[t]["chosen_by"])
    return weights, base, votes


def quantize(fp32: Path, int8: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # per-channel weights: per-tensor INT8 lost far more accuracy on this model
    with atomic_path(int8) as tmp:
        quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8, per_channel=True)


GPU_BATCH = 256
# Rows per batch where the CPU scores a split through the fp32 graph: small batches of similar
# token counts stay in each core's cache (2 cores: 1.46x batches of 64 on the demo's tickets,
# 1.38x on long ones; bench/results/split_scoring_*.json), and fp32 logits do not depend on it.
# INT8 ones do (dynamic quantisation scales activations per batch: README, INT8 caveat), so the
# INT8 graph scores in the batches a served model uses, and what export stores for evaluate and
# promote is what the served model gives those rows.
SPLIT_BATCH = 4


def split_scorer(directory: Path, int8: bool) -> TicketClassifier:
    """The transformer of the bundle in `directory` set up to score whole splits: one ONNX
    Runtime thread per batch (fp32: SPLIT_BATCH rows; INT8: the served batch), as many batches
    at once as the process has cores (on 16 cores INT8 ran at 54 rows/s with ONNX Runtime's own
    threads over one batch)."""
    from ticketml.baseline import cpu_count

    classifier = TicketClassifier.from_dir(
        directory, int8=int8, transformer_only=True, intra_op_threads=1
    )
    if not int8:
        classifier.batch_size = SPLIT_BATCH
    classifier.workers = cpu_count()  # the cores this process may use (affinity and quota)
    return classifier


BESIDE = " (beside)"  # a phase run in a thread beside the others: not part of their sum


def int8_probs(staging: Path, out: Path, texts: dict[str, list[str]], beside: bool = False) -> dict:
    """The INT8 graph (quantised from the fp32 one in `staging`) on test: what the CPU serves,
    its scores kept under `out` for evaluate and promote; `beside`: run in a thread beside the
    GPU's phases, and named so (BESIDE), so that bench/report.py leaves them out of the sum of
    export's phases (the main thread's wait for them is a phase of its own)."""
    mark = BESIDE if beside else ""
    phase(f"INT8 quantisation{mark}", quantize, staging / ONNX_FP32, staging / ONNX_INT8)
    int8 = split_scorer(staging, int8=True)
    scores.attach(int8, out)  # evaluate and promote read these back
    return phase(f"INT8 graph on test{mark}", graph_probs, int8, texts, ("test",))


def fp32_device(cfg: DictConfig) -> str | None:
    """Where the fp32 scores of val and test are computed: "cuda" (the torch module on the GPU,
    export.fp32_scores=auto on a machine with one) or None (the graph in ONNX Runtime)."""
    choice = str(cfg.export.fp32_scores).lower()
    if choice not in ("auto", "onnx"):
        raise ModelError(f"export.fp32_scores={choice}: auto | onnx")
    return "cuda" if choice == "auto" and torch.cuda.is_available() else None


def torch_runner(model: MultiTaskClassifier, device: str):
    """A padded batch's logits from the torch module on `device`, in float32 (TF32 off), for
    TicketClassifier.runner: the same tokenisation, batching and calibration as the graph."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    module = model.to(device).eval()

    def run(batch: dict[str, np.ndarray]) -> list[np.ndarray]:
        with torch.inference_mode():
            ids = torch.from_numpy(batch["input_ids"]).to(device, non_blocking=True)
            mask = torch.from_numpy(batch["attention_mask"]).to(device, non_blocking=True)
            out = module(ids, mask)
        return [out[t].float().cpu().numpy() for t in TASKS]

    return run


def runner_parity(classifier, runner, frames: dict, atol: float) -> dict:
    """The torch module on the GPU against the graph in ONNX Runtime on test rows: the fp32
    scores come from the first only when it agrees with the second."""
    texts = classifier.clean(parity_texts(frames, 64, seed=1))
    graph = classifier.run_logits(texts)
    classifier.runner = runner
    try:
        gpu = classifier.run_logits(texts)
    finally:
        classifier.runner = None
    worst, agree = worst_of(agreement(graph, gpu))
    if worst > atol or agree < 1.0:
        raise ModelError(
            f"the torch module on the GPU disagrees with the ONNX graph (max |diff| {worst:.2e}, "
            f"argmax agreement {agree:.3f}, tolerance {atol}): export.fp32_scores=onnx scores "
            "with the graph"
        )
    return {"gpu_vs_graph_max_abs_diff": worst, "gpu_vs_graph_rows": len(texts)}


def check_parity(model, classifier, frames: dict, atol: float) -> dict:
    """torch vs the exported graph on test rows plus a very short and a truncated text."""
    checks = parity(model, classifier, parity_texts(frames, 16, seed=0))
    log.info("parity: %s", checks)
    worst, agree = worst_of(checks)
    if worst > atol or agree < 1.0:
        raise ModelError(f"ONNX parity check failed: {checks} (tolerance {atol})")
    return checks


def score_graphs(probs: dict, labels: dict, label_maps: dict, calibration: dict) -> dict:
    """Each graph alone, as served, on the splits it scored: calibrated scores, labels by the
    decision rule."""
    scalings = {t: scaling_of(calibration.get(t, {})) for t in TASKS}
    return {
        name: {s: score(p[s][1], labels[s], label_maps, decide_tasks(p[s][1], scalings)) for s in p}
        for name, p in probs.items()
    }


def score_hybrid(
    weights: dict,
    tempered: dict,
    tfidf: dict,
    labels: dict,
    label_maps,
    scripts: dict,
    votes: dict | None = None,
) -> dict:
    """The hybrid on val (the fp32 scores it was fitted on) and test (as served), with its ECE
    before its calibration map; `votes`: per split the training tickets' (build_hybrid)."""
    scalings = {t: scaling_of(weights[t]) for t in TASKS}
    result = {"weights": weights}
    for s in EVAL_SPLITS:
        nb = (votes or {}).get(s)
        served = hybrid_proba(weights, tempered[s], tfidf[s], scripts=scripts[s], neighbours=nb)
        result[s] = score(served, labels[s], label_maps, decide_tasks(served, scalings))
        mixed = hybrid_proba(
            weights, tempered[s], tfidf[s], calibrated=False, scripts=scripts[s], neighbours=nb
        )
        for t in TASKS:
            result[s][t]["ece_uncalibrated"] = ece(mixed[t], labels[s][t])
    return result


SMOKE_MARGIN = 0.2
# what a served model answers at every load (smoke.json): made-up tickets, so no customer text
# goes into the registry; varied in language, length and markup
SMOKE_TEXTS = (
    "VPN keeps disconnecting every hour since the update",
    "Please refund my last invoice, I was charged twice",
    "I cannot log in: password reset link expired",
    "The app crashes on startup\n  at com.acme.ui.Main.start(Main.java:42)\n  at java.lang.Thread.run",
    "Feature request: export the report as CSV",
    "Production is down for all users, nobody can work!",
    "Не могу подключиться к VPN, ошибка 809",
    "Bitte senden Sie mir eine Rechnung für März",
    "Error 500 on /api/v2/orders after deploy, see log: <pre>Traceback (most recent call last)</pre>",
    "How do I add a new user to my team account?",
    "Printer on floor 3 is out of toner",
    "Security: suspicious login attempts from an unknown IP",
)


def write_smoke(staging: Path, int8: bool) -> None:
    """smoke.json: SMOKE_TEXTS with the labels the staged model gives them, and which of them it
    is sure of (top score 0.2 or more ahead of the second on both tasks, so a machine whose
    arithmetic differs a little gives the same labels). TicketClassifier answers all of them at
    every load and refuses to load when a sure one comes out differently."""
    model = TicketClassifier.from_dir(staging, int8=int8)  # no smoke.json yet: nothing checked
    texts = list(SMOKE_TEXTS)
    probs = model.predict_proba(texts)
    labels = model.decisions(model.served, probs)  # what predict() answers, scored once
    margin = np.full(len(texts), np.inf)
    for t in TASKS:
        top = np.sort(probs[t], axis=1)
        margin = np.minimum(margin, top[:, -1] - top[:, -2])
    write_json(
        {
            "graph": model.bundle.graph,
            "texts": texts,
            **{t: [model.label_maps[t][int(i)] for i in labels[t]] for t in TASKS},
            "sure": [int(i) for i in np.flatnonzero(margin >= SMOKE_MARGIN)],
        },
        staging / FILES["smoke"],
    )


def report(out: Path, results: dict, checks: dict, serve_int8: bool, stage) -> None:
    """metrics/<name>.json, what the export's MLflow run gets, and the summary lines."""
    sizes = {
        name: (out / name).stat().st_size / 2**20
        for name in (ONNX_FP32, ONNX_INT8)
        if (out / name).exists()
    }
    size_of = {
        "onnx": sizes.get(ONNX_FP32),
        "onnx_int8": sizes.get(ONNX_INT8),
        "hybrid": sizes.get(ONNX_INT8 if serve_int8 else ONNX_FP32),
    }
    for name, metrics in results.items():
        write_json(
            {**metrics, "parity": checks, "size_mb": size_of[name]},
            out / "metrics" / f"{name}.json",
        )
    stage.metrics({f"parity_{k}": v for k, v in checks.items() if not isinstance(v, str)})
    stage.tags(fp32_scored_by=checks["fp32_scored_by"])
    stage.metrics({f"size_mb_{k.replace('.', '_')}": v for k, v in sizes.items()})
    for name, metrics in results.items():
        stage.metrics(flat_metrics(metrics, prefix=f"{name}_"))
        stage.artifact(out / "metrics" / f"{name}.json", "metrics")
    for name, metrics in results.items():
        test = metrics["test"]
        print(
            f"{name} test: "
            + ", ".join(
                f"{t} macro_f1={test[t]['macro_f1']:.3f} ECE={test[t]['ece']:.3f}" for t in TASKS
            )
            + f" ({size_of[name] or 0:.1f} MB graph)"
        )
    if "hybrid" in results:
        test = results["hybrid"]["test"]
        print(
            "hybrid calibration (fitted on val): test ECE "
            + ", ".join(
                f"{t} {test[t]['ece_uncalibrated']:.3f} -> {test[t]['ece']:.3f}" for t in TASKS
            )
        )
    print(f"parity vs torch: max |diff| {worst_of(checks)[0]:.2e}, argmax agreement 100%")
    if "gpu_vs_graph_max_abs_diff" in checks:
        print(
            f"fp32 scores by {checks['fp32_scored_by']}: max |diff| to the graph "
            f"{checks['gpu_vs_graph_max_abs_diff']:.2e} on {checks['gpu_vs_graph_rows']} rows"
        )


def run_export(cfg: DictConfig) -> dict:
    """Write artifacts/model.onnx (+ model.int8.onnx), serving files and ONNX metrics; log to MLflow
    (the run spans the export, with val and test as its dataset inputs)."""
    from ticketml.tracking import stage_run

    print(f"export: imports and configuration done in {startup_seconds():.1f} s", flush=True)
    started = time.perf_counter()
    with stage_run(cfg, "export") as stage:
        done("opening the MLflow run", started)
        results = export_and_log(cfg, stage)
        started = time.perf_counter()
    done("closing the MLflow run", started)
    return results


def serves_int8(cfg: DictConfig) -> bool:
    """Whether the bundle serves the INT8 graph (export.use_int8: auto = where quantised)."""
    choice = str(cfg.export.use_int8).lower()
    serve_int8 = bool(cfg.export.quantize) if choice == "auto" else choice == "true"
    if serve_int8 and not cfg.export.quantize:
        raise ModelError("export.use_int8=true needs export.quantize=true")
    return serve_int8


def build_bundle(
    cfg: DictConfig, model, frames: dict, staging: Path, out: Path, serve_int8: bool
) -> tuple[dict, dict]:
    """The served bundle built in `staging` from the trained `model`: the ONNX graph (and its
    INT8 copy), held to the module by parity checks; val and test scored by the fp32 graph (on
    a GPU by the module, held to the graph), test by the INT8 graph (the scores kept under `out`
    for evaluate and promote; on a GPU machine beside the GPU's work); the hybrid's weights and
    calibration fitted on the fp32 val scores, as train fits the transformer's calibration (INT8
    scoring on the CPU's cores is export's largest cost: val is not scored twice for it), the
    served hybrid scored on test; the smoke examples. Returns (results, checks)."""
    label_maps = model.hparams.label_maps
    phase("ONNX graph", export_graph, model, staging / ONNX_FP32, int(cfg.export.opset))
    classifier = split_scorer(staging, int8=False)
    texts = {s: classifier.clean(served_texts(frames[s])) for s in EVAL_SPLITS}
    device = fp32_device(cfg)
    quantized = bool(cfg.export.quantize)
    with ThreadPoolExecutor(1, thread_name_prefix="int8") as cpu:
        # the INT8 graph on test (the CPU's cores) beside the GPU's work where fp32 is the GPU's;
        # on a CPU machine after the fp32 graph, whose cores it would share
        int8 = cpu.submit(int8_probs, staging, out, texts, True) if quantized and device else None
        atol = float(cfg.export.parity_atol)
        checks = phase("parity", check_parity, model, classifier, frames, atol)
        if device:  # the GPU scores, held to the graph first; not stored as the graph's own
            runner = phase(f"the module on {device}", torch_runner, model, device)
            checks |= phase("parity on the GPU", runner_parity, classifier, runner, frames, atol)
            classifier.runner, classifier.batch_size = runner, GPU_BATCH
            what = f"fp32 scores on val + test (torch on {torch.cuda.get_device_name()})"
        else:
            scores.attach(classifier, out)
            what = "fp32 graph on val + test"
        checks["fp32_scored_by"] = f"torch {device}" if device else "onnxruntime"
        probs = {"onnx": phase(what, graph_probs, classifier, texts)}
        if quantized:  # what is left of the INT8 work beside, or all of it after the fp32 graph
            probs["onnx_int8"] = (
                phase("INT8 scores awaited", int8.result)
                if int8
                else int8_probs(staging, out, texts)
            )
    labels = {s: encode_labels(frames[s], label_maps) for s in EVAL_SPLITS}
    calibration_file = staging / FILES["calibration"]
    calibration = read_json(calibration_file) if calibration_file.is_file() else {}
    results = score_graphs(probs, labels, label_maps, calibration)
    if cfg.model.hybrid:
        served = probs["onnx_int8" if serve_int8 else "onnx"]
        # fitted on val's fp32 scores, scored on test as served
        tempered = {"val": probs["onnx"]["val"][0], "test": served["test"][0]}
        # each row's script, of the text as the graph saw it (what serving blends by)
        scripts = {s: text_scripts(texts[s]) for s in tempered}
        weights, tfidf, votes = phase(
            "hybrid weights",
            build_hybrid,
            cfg,
            tempered,
            staging,
            frames,
            label_maps,
            scripts,
            texts,
            bool(model.hparams.get("baseline_product", False)),
            bool(model.hparams.get("lexical", False)),
        )
        results["hybrid"] = score_hybrid(
            weights, tempered, tfidf, labels, label_maps, scripts, votes
        )
    phase("smoke examples", write_smoke, staging, serve_int8)
    return results, checks


def export_and_log(cfg: DictConfig, stage) -> dict:
    """The checkpoint exported: its serving files written, the bundle built in a staging
    folder (build_bundle) and published into artifacts/ only when whole; the report written
    and logged on `stage`."""
    out = Path(cfg.paths.artifacts_dir)
    model = phase("checkpoint", load_checkpoint, cfg)
    phase("serving files", write_serving_files, model, out, cfg)
    frames = phase("splits", load_splits, cfg)
    phase("dataset inputs", stage.inputs, cfg, EVAL_SPLITS, frames)
    serve_int8 = serves_int8(cfg)
    staging = out / ".export"
    shutil.rmtree(staging, ignore_errors=True)
    scores.clear(out)  # a new graph: what the old one scored is no use
    staging.mkdir(parents=True)
    for name in (FILES[k] for k in ("tokenizer", "label_maps", "model_config", "calibration")):
        if (out / name).is_file():
            shutil.copy(out / name, staging / name)
    try:
        results, checks = build_bundle(cfg, model, frames, staging, out, serve_int8)
        files = load(staging, int8=serve_int8).files  # what the bundle holds
        phase("publish", publish, staging, out, files)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    phase("report", report, out, results, checks, serve_int8, stage)
    return results
