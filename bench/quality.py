"""Model quality on one dataset: TF-IDF baseline vs transformer vs hybrid, per task and language.

    python bench/quality.py --data synthetic
    python bench/quality.py --data support_tickets data.path=../shared/data/support-tickets-sample/tickets.csv
    python bench/quality.py --data synthetic --seeds 42 1 2 3 4 --name synthetic_seeds
    python bench/quality.py --data jira_agile --pretrain --name jira_tapt     # TAPT first

Same split and seed for every model; on synthetic data the generator's Bayes classifier (the
ceiling, see bench/ceiling.py) is scored on that split too. With --seeds the whole comparison is
repeated per seed (a new split, and new rows on synthetic data) and summarised as mean and
paired difference to the baseline. The transformer is calibrated and the hybrid fitted on val
exactly as `export_onnx` does (`hybrid`: the served choice per task; `hybrid_blend` and
`hybrid_stack`: each way forced). Writes bench/results/quality_<name>.json. With --from-probs a
folder of saved runs (--probs-dir) is scored again with today's calibration and hybrid fitting:

    python bench/quality.py --data synthetic_long --name long_gpu_head_tail_rescored --from-probs DIR
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from bench.machine import machine_info, scratch_overrides, write_result  # noqa: E402
from pyfunc.text import scripts as text_scripts  # noqa: E402
from ticketml import TASKS  # noqa: E402

HYBRIDS = ("blend", "stack")  # each forced, beside the served choice (model.combiner)


def scores(probs: dict, labels: dict, label_maps: dict, decisions: dict, before=None) -> dict:
    """The one scorer (ticketml.metrics.score: macro-F1/accuracy of the decisions, ECE, on the
    rows labelled for each task), plus the ECE before the calibration map (`before`) and the ECE
    a perfectly calibrated model with these probabilities would score on these rows
    (`ece_noise`: mean and 95th percentile)."""
    from ticketml.calibration import ece, ece_noise
    from ticketml.data.schema import labelled_rows
    from ticketml.metrics import score

    out = {
        t: {k: m[k] for k in ("accuracy", "macro_f1", "ece", "n")}
        for t, m in score(probs, labels, label_maps, decisions).items()
    }
    for t in TASKS:
        if before is not None:
            out[t]["ece_uncalibrated"] = ece(before[t], labels[t])
        out[t]["ece_noise"] = ece_noise(labelled_rows(labels[t], probs[t])[1])
    return out


def subset(d: dict, mask: np.ndarray) -> dict:
    return {t: v[mask] for t, v in d.items()}


def adapt_encoder(cfg) -> tuple[str, dict]:
    """`ticketml pretrain` on this split (train + val text): the adapted encoder's folder."""
    from ticketml.training.pretrain import run_pretrain

    lineage = run_pretrain(cfg)
    return str(cfg.pretrain.output_dir), lineage


def expert_probs(model, dm) -> dict:
    """model.lexical: each expert's probabilities on val and test, {"deep": ..., "lexical": ...}
    (the encoder's heads, the token layer; untempered), to try other ways of joining them."""
    from scipy.special import softmax

    from ticketml.training.module import predict_logits
    from ticketml.training.train import autocast_dtype

    dtype = autocast_dtype(model, dm.runtime)
    saved = {"deep": {}, "lexical": {}}
    for s in ("val", "test"):
        experts = predict_logits(model, dm.eval_loader(s), dtype, experts=True)
        for name, logits in zip(saved, experts, strict=True):
            saved[name][s] = {t: softmax(z, axis=1) for t, z in logits.items()}
    return saved


def measure(
    data: str, overrides: list[str], probs_dir: Path | None = None, pretrain: bool = False
) -> dict:
    """Train and score baseline, transformer and hybrid (the served choice, and blend and
    stacker each forced), and, on synthetic data, the ceiling; with `pretrain`, the transformer
    starts from an encoder `ticketml pretrain` adapted to this split's text."""
    from omegaconf import OmegaConf

    from ticketml.baseline import fit_baseline
    from ticketml.config import load_config
    from ticketml.contract import load_label_maps, load_splits
    from ticketml.data.preprocess import preprocess
    from ticketml.data.schema import encode_labels
    from ticketml.data.sources import download_data, generated
    from ticketml.hybrid import combiner_for
    from ticketml.training.train import best_epoch, evaluate, train_model

    paths = scratch_overrides("ticketml-quality-")
    work = Path(paths[0].split("=", 1)[1]).parent
    cfg = load_config([f"data={data}", *paths, "train.progress_bar=false", *overrides])
    download_data(cfg)
    preprocess(cfg)
    splits, label_maps = load_splits(cfg), load_label_maps(cfg)
    labels = {s: encode_labels(splits[s], label_maps) for s in ("val", "test")}
    started = time.perf_counter()
    tfidf = fit_baseline(splits["train"], label_maps, cfg.baseline)
    base = {s: tfidf.predict_proba(splits[s]["text"].tolist()) for s in ("val", "test")}
    baseline_seconds = time.perf_counter() - started
    lineage = {}
    if pretrain:
        OmegaConf.update(cfg, "pretrain.output_dir", str(work / "tapt"))
        encoder, lineage = adapt_encoder(cfg)
        OmegaConf.update(cfg, "model.encoder_name", encoder)
    started = time.perf_counter()
    model, dm, history, _ = train_model(cfg)
    _, logits = evaluate(model, dm)
    train_seconds = time.perf_counter() - started
    lexical = bool(model.hparams.lexical)
    experts = expert_probs(model, dm) if lexical else {}
    del model
    ceiling = None
    if generated(cfg):  # ceiling_proba is None when the rows are not this generator's
        from ticketml.data.synthetic import ceiling_proba

        ceiling = ceiling_proba(cfg, splits["test"]["text"].tolist(), label_maps)
    test = splits["test"]
    languages = test["language"].to_numpy(str) if "language" in test.columns else None
    scripts = {s: text_scripts(splits[s]["text"]) for s in ("val", "test")}  # as the models saw
    combiner = combiner_for(str(cfg.model.combiner), bool(cfg.train.baseline_product), lexical)
    neighbours = None
    if combiner == "pool" and cfg.model.neighbours:  # as export_onnx builds them
        neighbours = search_neighbours(tfidf.features, splits, label_maps)
    compared = compare(
        logits,
        base,
        labels,
        label_maps,
        languages,
        combiner,
        int(cfg.seed),
        ceiling,
        scripts,
        neighbours=neighbours,
    )
    saved = {"baseline": base, **compared.pop("saved"), **experts}
    if probs_dir is not None:  # per-row probabilities, to try other combinations without retraining
        probs_dir.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            probs_dir / f"{data}_seed{cfg.seed}.npz",
            **{
                f"{s}_{m}_{t}": p[s][t]
                for s in ("val", "test")
                for m, p in saved.items()
                for t in TASKS
            },
            **{f"{s}_labels_{t}": labels[s][t] for s in ("val", "test") for t in TASKS},
            **(saved_neighbours(*neighbours) if neighbours else {}),
            **{f"{s}_script": np.array(scripts[s]) for s in ("val", "test")},
            **{  # val's too: a per-language combination is fitted there
                f"{s}_language": splits[s]["language"].to_numpy(str)
                if "language" in splits[s].columns
                else np.array([""] * len(splits[s]))
                for s in ("val", "test")
            },
        )
    result = {
        "dataset": data,
        "seed": int(cfg.seed),
        # the encoder trained (model.encoder_name=auto resolved: training.runtime)
        "encoder": dm.runtime.encoder_name
        if not pretrain
        else f"TAPT({lineage['source_encoder']})",
        "pretrain": lineage,
        "max_length": cfg.model.max_length,
        "truncation": cfg.model.truncation,
        "train_rows": len(splits["train"]),
        "test_rows": len(test),
        "epochs": len(history.rows),
        "best_epoch": best_epoch(history, cfg.train.monitor),
        "averaged": history.averaged,  # train.average_top_k > 1: the epochs, val scores, choice
        "expert_weights": history.expert_weights,  # model.lexical: the encoder's share, per task
        "train_seconds": train_seconds,
        "baseline_seconds": baseline_seconds,
        "overrides": overrides,
        **compared,
    }
    report(
        result,
        f"{data}, seed {cfg.seed}: {len(test)} test tickets, {result['epochs']} epochs (best {result['best_epoch']})",
    )
    return result


def search_neighbours(features, splits: dict, label_maps: dict) -> tuple:
    """The training tickets' index (ticketml.hybrid.build_neighbours) and its search of the val
    and test rows: compare's `neighbours`."""
    from ticketml.hybrid import build_neighbours, search_split

    index = build_neighbours(features, splits["train"], label_maps)
    return index, {
        s: search_split(index, features, splits[s]["text"].tolist()) for s in ("val", "test")
    }


def saved_neighbours(index, found: dict) -> dict[str, np.ndarray]:
    """What a --probs-dir file keeps of the neighbours: each val/test row's nearest training
    rows and similarities, and the training rows' labels (their votes, rescored)."""
    return {
        **{
            f"{s}_neighbours_{k}": v
            for s, pair in found.items()
            for k, v in zip(("index", "sim"), pair, strict=True)
        },
        **{f"train_labels_{t}": y for t, y in index.labels.items()},
        "neighbour_classes": np.array([index.n_classes[t] for t in TASKS]),
    }


def loaded_neighbours(saved) -> tuple | None:
    """compare's `neighbours` from a --probs-dir file that keeps them (saved_neighbours): an
    index without postings, whose votes read the saved search."""
    from pyfunc.neighbours import Neighbours

    if "val_neighbours_index" not in saved:
        return None
    labels = {t: saved[f"train_labels_{t}"] for t in TASKS}
    classes = dict(zip(TASKS, saved["neighbour_classes"].tolist(), strict=True))
    index = Neighbours(np.zeros(1), np.zeros(0), np.zeros(0), labels, classes)
    found = {
        s: (saved[f"{s}_neighbours_index"], saved[f"{s}_neighbours_sim"]) for s in ("val", "test")
    }
    return index, found


def add_neighbours(folder: Path, data: str, overrides: list[str]) -> None:
    """Into every run a --probs-dir `folder` holds (runs saved before model.neighbours), the
    neighbours' search (saved_neighbours) on that run's split, remade from the data (`overrides`:
    the run's data.* and preprocess.* settings; its seed from the file name), checked to be the
    rows it saved: so `--from-probs` rescores them with the pool's third expert."""
    from ticketml.baseline import fit_features
    from ticketml.config import load_config
    from ticketml.contract import load_label_maps, load_splits
    from ticketml.data.preprocess import preprocess
    from ticketml.data.schema import encode_labels
    from ticketml.data.sources import download_data

    for path in sorted(folder.glob("*_seed*.npz")):
        seed = int(path.stem.rsplit("_seed", 1)[1])
        cfg = load_config(
            [f"data={data}", *scratch_overrides("ticketml-quality-"), f"seed={seed}", *overrides]
        )
        download_data(cfg)
        preprocess(cfg)
        splits, label_maps = load_splits(cfg), load_label_maps(cfg)
        with np.load(path) as saved:
            arrays = {k: saved[k] for k in saved.files}
        for s in ("val", "test"):
            got = encode_labels(splits[s], label_maps)
            if any((got[t] != arrays[f"{s}_labels_{t}"]).any() for t in TASKS):
                raise SystemExit(f"{path}: its {s} rows are not this split's (check the overrides)")
        features, _ = fit_features(splits["train"]["text"].tolist(), cfg.baseline)
        arrays |= saved_neighbours(*search_neighbours(features, splits, label_maps))
        tmp = path.with_name(f".{path.stem}.tmp.npz")
        np.savez_compressed(tmp, **arrays)
        tmp.replace(path)
        print(f"{path}: neighbours added ({len(splits['train'])} training rows)")


def compare(
    logits: dict,
    base: dict,
    labels: dict,
    label_maps: dict,
    languages: np.ndarray | None,
    combiner: str,
    seed: int,
    ceiling: dict | None = None,
    scripts: dict | None = None,
    forced: tuple[str, ...] = HYBRIDS,
    neighbours: tuple | None = None,
) -> dict:
    """Exactly what train + export_onnx ship, from the transformer's logits and the baseline's
    probabilities on val and test: the transformer's calibration map, the hybrid (blend or
    stacker per task, `combiner`) and its own map, all fitted on val; labels by pyfunc's decision
    rule; scored on test by the one scorer, overall and per language (≥ 20 test rows).
    `scripts`: each val/test row's pyfunc.text.script (None: one blend weight per task).
    `forced`: the combiners scored each forced, beside the served choice. `neighbours`:
    (pyfunc.neighbours.Neighbours, {split: its search of that split's rows}): the training
    tickets whose votes the served pool weighs where they help on val (model.neighbours)."""
    from pyfunc.core import decide_tasks, hybrid_proba, scaling_of
    from pyfunc.probability import scaled, softmax
    from ticketml.calibration import fit_calibration
    from ticketml.hybrid import fit_hybrid

    calib = {t: fit_calibration(logits["val"][t], labels["val"][t]) for t in TASKS}
    tempered = {
        s: {t: softmax(logits[s][t], calib[t]["temperature"]) for t in TASKS}
        for s in ("val", "test")
    }
    trans = {s: {t: scaled(logits[s][t], calib[t]) for t in TASKS} for s in ("val", "test")}
    scripts = scripts or {"val": None, "test": None}
    index, found = neighbours or (None, {})
    hybrids = {
        "hybrid": fit_hybrid(
            tempered["val"],
            base["val"],
            labels["val"],
            combiner,
            seed,
            scripts["val"],
            index and (index, found["val"]),
        )
    }
    for name in forced:
        hybrids[f"hybrid_{name}"] = fit_hybrid(
            tempered["val"], base["val"], labels["val"], name, seed, scripts["val"]
        )
    probs = {"baseline": base["test"], "transformer": trans["test"]}
    decisions = {
        "baseline": decide_tasks(base["test"]),
        "transformer": decide_tasks(trans["test"], calib),
    }
    before = {"transformer": {t: softmax(logits["test"][t]) for t in TASKS}}
    for name, entries in hybrids.items():
        votes = index.votes_for(entries, found["test"]) if index else None
        mixed = partial(hybrid_proba, entries, tempered["test"], base["test"])
        probs[name] = mixed(True, scripts["test"], votes)
        decisions[name] = decide_tasks(probs[name], {t: scaling_of(entries[t]) for t in TASKS})
        before[name] = mixed(False, scripts["test"], votes)
    if ceiling is not None:
        probs["ceiling"] = ceiling
        decisions["ceiling"] = decide_tasks(ceiling)
    result = {
        "hybrid_choice": {
            t: {
                "method": hybrids["hybrid"][t]["method"],
                **hybrids["hybrid"][t]["chosen_by"],
                **{
                    k: hybrids["hybrid"][t][k]
                    for k in ("neighbour_weight", "neighbours")
                    if k in hybrids["hybrid"][t]
                },
            }
            for t in TASKS
        },
        "calibration": {
            name: {
                t: {k: v for k, v in e[t].items() if k in ("temperature", "floor")} for t in TASKS
            }
            for name, e in (("transformer", calib), ("hybrid", hybrids["hybrid"]))
        },
        "models": {
            k: scores(v, labels["test"], label_maps, decisions[k], before.get(k))
            for k, v in probs.items()
        },
        "saved": {"transformer": trans, "tempered": tempered},
    }
    if languages is not None:
        result["by_language"] = {}
        values, counts = np.unique(languages, return_counts=True)
        for lang, count in sorted(zip(values, counts, strict=True), key=lambda x: -x[1]):
            if count >= 20 and lang:
                mask = languages == lang
                result["by_language"][str(lang)] = {
                    k: scores(
                        subset(v, mask),
                        subset(labels["test"], mask),
                        label_maps,
                        subset(decisions[k], mask),
                        subset(before[k], mask) if k in before else None,
                    )
                    for k, v in probs.items()
                }
    return result


def report(result: dict, title: str) -> None:
    print(
        f"\n{title}, hybrid "
        + ", ".join(f"{t} {c['method']}" for t, c in result["hybrid_choice"].items())
    )
    print(
        f"{'model':<14} {'rows':<8} {'topic F1':>9} {'priority F1':>12} {'ECE (uncalibrated)':>26}"
    )
    for group, per_model in [("all", result["models"]), *result.get("by_language", {}).items()]:
        for name, m in per_model.items():
            ece = " ".join(
                f"{m[t]['ece']:.3f}"
                + (f" ({m[t]['ece_uncalibrated']:.3f})" if "ece_uncalibrated" in m[t] else "")
                for t in TASKS
            )
            print(
                f"{name:<14} {group:<8} {m['topic']['macro_f1']:>9.3f} {m['priority']['macro_f1']:>12.3f} {ece:>26}"
            )


def lexical_product(saved, splits: tuple[str, ...]) -> tuple[dict, dict]:
    """A model.lexical run's logits, per split and task, rebuilt from each expert's saved
    probabilities at the encoder's share that `train` fits on val (train.best_share; runs
    saved before that shipped took 0.5), and those shares."""
    import torch

    from pyfunc.probability import log_probs
    from ticketml.training.module import expert_product
    from ticketml.training.train import best_share

    logs = {
        (s, e, t): log_probs(saved[f"{s}_{e}_{t}"])
        for s in splits
        for e in ("deep", "lexical")
        for t in TASKS
    }
    share = {
        t: best_share(logs["val", "deep", t], logs["val", "lexical", t], saved[f"val_labels_{t}"])
        for t in TASKS
    }
    return {
        s: {
            t: expert_product(
                share[t], *(torch.from_numpy(logs[s, e, t]) for e in ("deep", "lexical"))
            ).numpy()
            for t in TASKS
        }
        for s in splits
    }, share


def rescore(
    path: Path,
    combiner: str,
    lexical: bool = True,
    forced: tuple[str, ...] = HYBRIDS,
    neighbours: bool = True,
) -> dict:
    """`compare` again on the probabilities a run saved (--probs-dir): today's calibration and
    hybrid fitting on that run's transformer and baseline, without retraining either. The
    transformer's logits are its tempered log-probabilities (the same up to the temperature,
    which the map refits); a model.lexical run's, its two experts' product at the share fitted
    on val, or without `lexical` its encoder's alone (`combiner` auto: the pool for the
    product, the blend otherwise); a pool weighs the training tickets' votes where the file
    keeps their search (saved_neighbours) and `neighbours` is on (model.neighbours)."""
    from pyfunc.probability import log_probs
    from ticketml.hybrid import combiner_for

    saved = np.load(path)
    splits = ("val", "test")
    shares = None
    if "val_deep_topic" not in saved:  # a run without model.lexical
        logits = {s: {t: log_probs(saved[f"{s}_tempered_{t}"]) for t in TASKS} for s in splits}
    elif lexical:  # the product at the share train fits on val
        logits, shares = lexical_product(saved, splits)
    else:  # the encoder's expert alone
        logits = {s: {t: log_probs(saved[f"{s}_deep_{t}"]) for t in TASKS} for s in splits}
    base = {s: {t: saved[f"{s}_baseline_{t}"] for t in TASKS} for s in splits}
    labels = {s: {t: saved[f"{s}_labels_{t}"] for t in TASKS} for s in splits}
    label_maps = {t: [str(i) for i in range(base["val"][t].shape[1])] for t in TASKS}
    languages = saved["test_language"] if "test_language" in saved else None
    seed = int(path.stem.rsplit("_seed", 1)[1])
    # runs saved before the scripts were: one blend weight per task, as those runs had
    scripts = {s: saved[f"{s}_script"].tolist() for s in splits} if "val_script" in saved else None
    combiner = combiner_for(combiner, False, shares is not None)
    result = compare(
        logits,
        base,
        labels,
        label_maps,
        languages,
        combiner,
        seed,
        None,
        scripts,
        forced,
        loaded_neighbours(saved) if neighbours and combiner == "pool" else None,
    )
    result.pop("saved")
    result = {
        "seed": seed,
        "rescored_from": path.name,
        "expert_weights": shares,
        "test_rows": len(labels["test"]["topic"]),
        **result,
    }
    report(result, f"{path.name} rescored: {result['test_rows']} test tickets")
    return result


def summarise(runs: list[dict]) -> dict:
    """Over seeds: each model's mean test macro-F1 per task, and its paired difference to the baseline."""
    out = {}
    for name in runs[0]["models"]:
        out[name] = {}
        for task in TASKS:
            vals = np.array([r["models"][name][task]["macro_f1"] for r in runs])
            diff = vals - np.array([r["models"]["baseline"][task]["macro_f1"] for r in runs])
            eces = [r["models"][name][task].get("ece") for r in runs]
            before = [r["models"][name][task].get("ece_uncalibrated") for r in runs]
            out[name][task] = {
                "mean_ece": float(np.mean(eces)) if None not in eces else None,
                "mean_ece_uncalibrated": float(np.mean(before)) if None not in before else None,
                "mean": float(vals.mean()),
                "min": float(vals.min()),
                "max": float(vals.max()),
                "mean_minus_baseline": float(diff.mean()),
                "wins_over_baseline": int((diff > 0).sum()),
            }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="synthetic")
    parser.add_argument("--name", default=None, help="result name (default: the data config)")
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=None,
        help="repeat with each seed (new split, and new rows on synthetic data); one file",
    )
    parser.add_argument("--probs-dir", type=Path, default=None, help="save per-row probabilities")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument(
        "--pretrain",
        action="store_true",
        help="start from an encoder `ticketml pretrain` adapted to each split's text (TAPT)",
    )
    parser.add_argument(
        "--from-probs",
        type=Path,
        default=None,
        help="rescore the runs saved in this --probs-dir folder with today's calibration and "
        "hybrid fitting (no training; overrides: model.combiner=... (default blend; auto as "
        "export ships it), model.lexical=false for a model.lexical run's encoder alone, the "
        "same run without its token layer, model.neighbours=true for a pool with the training "
        "tickets' votes, in files --add-neighbours has filled)",
    )
    parser.add_argument(
        "--no-stack",
        action="store_true",
        help="with --from-probs: leave out the forced stacker (its cross-validated fits take "
        "most of a rescoring: minutes a Jira split on 2 cores); the served combiner is scored",
    )
    parser.add_argument(
        "--add-neighbours",
        type=Path,
        default=None,
        help="FOLDER: add the neighbours' search to each run a --probs-dir folder holds, its split "
        "remade from --data and the overrides (the run's data.* / preprocess.* settings)",
    )
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    path = args.out_dir / f"quality_{args.name or args.data}.json"
    if args.add_neighbours is not None:
        return add_neighbours(args.add_neighbours, args.data, args.overrides)
    if args.from_probs is not None:
        given = dict(o.split("=", 1) for o in args.overrides)
        combiner = given.get("model.combiner", "blend")
        lexical = given.get("model.lexical", "true").lower() == "true"
        neighbours = given.get("model.neighbours", "false").lower() == "true"
        forced = tuple(h for h in HYBRIDS if not (args.no_stack and h == "stack"))
        runs = [
            rescore(f, combiner, lexical, forced, neighbours)
            for f in sorted(args.from_probs.glob("*_seed*.npz"))
        ]
        if not runs:
            raise SystemExit(
                f"{args.from_probs}: no *_seed*.npz files (bench/quality.py --probs-dir)"
            )
        result = {
            "dataset": args.data,
            "rescored_from": str(args.from_probs),
            "overrides": args.overrides,
            "seeds": [r["seed"] for r in runs],
            "summary": summarise(runs),
            "runs": runs,
            "machine": machine_info(),
        }
        write_result(result, path)
        return
    if not args.seeds:
        result = measure(args.data, args.overrides, args.probs_dir, args.pretrain)
        result["machine"] = machine_info()
        write_result(result, path)
        return
    runs = []
    for seed in args.seeds:  # the file is rewritten after each seed: a cut-off run keeps its seeds
        runs.append(
            measure(args.data, [*args.overrides, f"seed={seed}"], args.probs_dir, args.pretrain)
        )
        summary = summarise(runs)
        write_result(
            {
                "dataset": args.data,
                "overrides": args.overrides,
                "pretrain": args.pretrain,
                "seeds": [r["seed"] for r in runs],
                "summary": summary,
                "runs": runs,
                "machine": machine_info(),
            },
            path,
        )
    print(f"\nover seeds {args.seeds}: mean test macro-F1 (mean difference to the baseline, wins)")
    for name, per_task in summary.items():
        cells = [
            f"{t} {v['mean']:.3f} ({v['mean_minus_baseline']:+.3f}, {v['wins_over_baseline']}/{len(runs)})"
            for t, v in per_task.items()
        ]
        print(f"{name:<12} " + "  ".join(cells))


if __name__ == "__main__":
    main()
