"""TicketClassifier: the one inference core behind batch infer, FastAPI and `mlflow models serve`.

Only onnxruntime, tokenizers and numpy: the served environment stays small (no torch).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import contextmanager, nullcontext

import numpy as np

from . import TASKS
from .bundle import ONNX_FP32, ONNX_INT8, Bundle, load
from .probability import decide, log_probs, scaled, softmax
from .text import LEGACY, clean_text, text_options
from .text import scripts as text_scripts

__all__ = ["ONNX_FP32", "ONNX_INT8", "TASKS", "TicketClassifier"]


def head_and_tail(ids: list[int], max_length: int, head: int) -> list[int]:
    """A long text's first `head` tokens ([CLS] included) and its last max_length - head ([SEP]
    included): logs and quoted mails fill the middle of real tickets, while the problem tends to
    come first and the urgency last (`model.truncation=head_tail`)."""
    if len(ids) <= max_length:
        return list(ids)
    return list(ids[:head]) + list(ids[len(ids) - (max_length - head) :])


PARALLELISM = "TOKENIZERS_PARALLELISM"


@contextmanager
def tokenizer_threads():
    """The tokenizers library's own threads (every core the process may use) for a call over a
    whole split, whatever TOKENIZERS_PARALLELISM says: the Makefile sets it false so that a
    process forked later (DataLoader workers, servers) never inherits a thread pool in use. The
    library reads it at each call; afterwards it is back as it was, or false where it was unset
    (the forked processes stay single-threaded, without the library's warning). 40,000 long
    tickets, multilingual-e5-small's tokenizer, 2 cores: 47.5 s -> 35.7 s. Training tokenises
    its splits in it, and TicketClassifier scoring whole splits (workers > 1: export)."""
    previous = os.environ.get(PARALLELISM)
    os.environ[PARALLELISM] = "true"
    try:
        yield
    finally:
        os.environ[PARALLELISM] = "false" if previous is None else previous


STACK_FLOOR = 1e-6  # the stacker reads log-probabilities floored here (no -27 outliers)


def stack_features(transformer: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """The stacker's inputs for one task: both models' log-probabilities side by side."""
    return np.hstack(
        [
            np.log(np.clip(transformer, STACK_FLOOR, None)),
            np.log(np.clip(baseline, STACK_FLOOR, None)),
        ]
    )


def combine(
    entry: dict,
    transformer: np.ndarray,
    baseline: np.ndarray,
    scripts: Sequence[str] | None = None,
    neighbours: np.ndarray | None = None,
) -> np.ndarray:
    """One task's hybrid probabilities before the blend's calibration map, as its entry of
    hybrid.json says: the weighted blend w x transformer + (1 - w) x baseline ("blend"; with
    "by_script", a row written in one of those scripts takes that script's weight: `scripts` are
    the rows' pyfunc.text.script), the product softmax(w x log transformer + (1 - w) x log
    baseline) ("product": for a transformer trained inside that product, train.baseline_product;
    "pool": the same with a baseline weight of its own, softmax(w x log transformer + v x log
    baseline), with "by_script" a [w, v] per script; with "neighbour_weight" u, + u x log of
    the training tickets' votes, `neighbours`: pyfunc.neighbours), or a multinomial logistic
    regression on both models' log-probabilities ("stack")."""
    method = entry.get("method", "blend")
    if method == "stack":
        z = stack_features(transformer, baseline) @ np.asarray(entry["coef"], dtype=np.float64)
        return softmax(z + np.asarray(entry["intercept"], dtype=np.float64))
    w = float(entry["transformer_weight"])
    v = float(entry.get("baseline_weight", 1 - w))  # a pool's two weights are free (fitted by NLL)
    by_script = entry.get("by_script")
    if by_script:
        if scripts is None or len(scripts) != len(transformer):
            raise ValueError(f"this {method} weighs its halves per script: pass each row's script")
        # a blend's script holds its transformer weight x (the baseline's is 1 - x), a pool's [w, v]
        per_row = np.array(
            [x if isinstance(x := by_script.get(s, [w, v]), list) else [x, 1 - x] for s in scripts],
            dtype=np.float64,
        )
        w, v = per_row[:, :1], per_row[:, 1:]
    if method in ("product", "pool"):
        z = w * log_probs(transformer) + v * log_probs(baseline)
        if u := float(entry.get("neighbour_weight", 0.0)):
            if neighbours is None:
                raise ValueError("this pool weighs the training tickets' votes: pass them")
            z = z + u * log_probs(neighbours)
        return softmax(z)
    return w * transformer + (1 - w) * baseline


def hybrid_proba(
    entries: dict[str, dict],
    transformer: dict[str, np.ndarray],
    baseline: dict[str, np.ndarray],
    calibrated: bool = True,
    scripts: Sequence[str] | None = None,
    neighbours: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """The hybrid per task (`combine`), then (when `calibrated` and hybrid.json has one) its own
    calibration map, fitted on validation. `transformer`: the tempered softmax(z / T); `scripts`:
    the rows' pyfunc.text.script (what a blend by script needs); `neighbours`: per task the
    training tickets' votes (what a pool with a neighbour weight needs: neighbour_votes)."""
    out = {}
    for t in TASKS:
        nb = (neighbours or {}).get(t)
        mixed = combine(entries[t], transformer[t], baseline[t], scripts, nb)
        scaling = scaling_of(entries[t]) if calibrated else None
        out[t] = scaled(log_probs(mixed), scaling) if scaling else mixed
    return out


def decide_tasks(
    probs: dict[str, np.ndarray], scalings: dict[str, dict | None] | None = None
) -> dict[str, np.ndarray]:
    """Label indices per task of probabilities calibrated with `scalings` (probability.decide)."""
    return {t: decide(probs[t], (scalings or {}).get(t)) for t in probs}


def scaling_of(entry: dict) -> dict | None:
    """The calibration map in one task's entry of calibration.json or hybrid.json, if any."""
    keys = {k: entry[k] for k in ("temperature", "bias", "floor") if k in entry}
    return keys or None


def bundle_tokenizer(path, config: dict):
    """(the bundle's tokenizer, head tokens kept by a head_tail cut or 0). tokenizer.json may
    carry its own padding/truncation: ours are set explicitly (cut_as_served). Padding is done
    per batch, after sorting by token count (TicketClassifier.batches)."""
    from tokenizers import Tokenizer

    head_tokens = (
        int(config.get("head_tokens", 0)) if config.get("truncation") == "head_tail" else 0
    )
    tokenizer = cut_as_served(
        Tokenizer.from_file(str(path)), int(config["max_length"]), head_tokens
    )
    return tokenizer, head_tokens


def cut_as_served(tokenizer, max_length: int, head_tokens: int):
    """`tokenizer` (the tokenizers library's) set to cut as the served model does, unpadded:
    at max_length, or, with `head_tokens` (a head_tail cut, made in token_ids), not at all."""
    if head_tokens:  # the tokenizer keeps the whole text
        tokenizer.no_truncation()
    else:
        tokenizer.enable_truncation(max_length=max_length)
    tokenizer.no_padding()
    return tokenizer


def token_ids(
    tokenizer,
    texts: Sequence[str],
    max_length: int,
    head_tokens: int,
    prefix: str = "",
    threads: bool = False,
) -> list[list[int]]:
    """Each text's token ids as the model reads them (not padded): `tokenizer` set by
    cut_as_served, a head_tail cut made here; `threads`: the library's own threads over a whole
    split (tokenizer_threads). Training tokenises its splits with this, as serving does."""
    with tokenizer_threads() if threads else nullcontext():
        ids = [e.ids for e in tokenizer.encode_batch([prefix + t for t in texts])]
    if head_tokens:
        ids = [head_and_tail(row, max_length, head_tokens) for row in ids]
    return ids


def cpu_session(onnx_path: str, intra_op_threads: int | None = None):
    """(ONNX Runtime CPU session of the graph, the run options every call passes)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = int(
        intra_op_threads or os.environ.get("TICKETML_ORT_THREADS", 0)
    )
    options.inter_op_num_threads = 1
    # ONNX Runtime's CPU arena keeps the peak of every batch it has seen (64 x 1,500-character
    # tickets: 1.9 GB that stays); shrunk after each call, the process keeps 0.15 GB at 1.22x
    # the time of a long batch (off: 1.48x). TICKETML_ORT_ARENA=1 / 0: kept / off
    # (bench/serve_memory.py)
    arena = os.environ.get("TICKETML_ORT_ARENA", "shrink")
    options.enable_cpu_mem_arena = arena in ("1", "shrink")
    run_options = ort.RunOptions()
    if arena == "shrink":  # the arena's speed within a call, its memory back after it
        run_options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
    return session, run_options


class TicketClassifier:
    """Tokenise → ONNX Runtime → calibrated softmax (→ blend with TF-IDF) → labels and scores."""

    def __init__(
        self,
        bundle: Bundle,
        intra_op_threads: int | None = None,
        batch_size: int = 64,
    ):
        """Serve `bundle` (pyfunc.bundle.load: its files are checked there)."""
        self.bundle = bundle
        self.label_maps: dict[str, list[str]] = bundle.read("label_maps")
        self.config = bundle.config
        # the transform the model was trained with (models from before it travelled: LEGACY)
        transform = self.config.get("text_transform")
        self.text_options = text_options(transform) if transform is not None else LEGACY
        # calibration maps (temperature, class bias, floor) of the transformer's logits
        calib = bundle.read("calibration")
        self.scalings: dict[str, dict | None] = {
            t: scaling_of(calib[t]) if t in calib else None for t in TASKS
        }
        # Hybrid: the TF-IDF baseline blended or stacked with the transformer (fitted on validation).
        self.tfidf, self.hybrid, self.hybrid_scalings = None, {}, {}
        if bundle.hybrid:
            from .tfidf import TfidfClassifier

            self.tfidf = TfidfClassifier.load(bundle.path("baseline"))
            entries = bundle.read("hybrid")
            self.hybrid = {t: entries[t] for t in TASKS}
            self.hybrid_scalings = {t: scaling_of(entries[t]) for t in TASKS}
        # the pool's third expert where hybrid.json weighs it: the training tickets' votes
        self.neighbours = None
        if any(e.get("neighbour_weight") for e in self.hybrid.values()):
            from .neighbours import Neighbours

            path = bundle.path("neighbours")
            if "neighbours" not in bundle.optional:
                raise FileNotFoundError(
                    f"{path}: missing; hybrid.json weighs the training tickets' votes, which "
                    f"need {path.name}"
                )
            self.neighbours = Neighbours.load(path)
        self.tokenizer, self.head_tokens = bundle_tokenizer(bundle.path("tokenizer"), self.config)
        self.pad_id = int(self.config["pad_id"])
        self.onnx_path = str(bundle.path("graph"))
        self.session, self.run_options = cpu_session(self.onnx_path, intra_op_threads)
        self.output_names = [f"{t}_logits" for t in TASKS]
        self.batch_size = batch_size
        # Set by the pipeline, never by a serving path: `runner` computes a padded batch's logits
        # in place of the graph (export_onnx: the same weights as a torch module on a GPU, held
        # to the graph by a parity check); `logit_store` holds logits this graph already gave
        # (ticketml.scores: export writes them, evaluate and promote read them).
        self.runner = None
        self.logit_store = None
        # batches run at once, each on one thread of a session made with intra_op_threads=1 (the
        # pipeline scoring whole splits: ONNX Runtime's own threads scale poorly over a batch of
        # 64 long texts, 54 rows/s on 16 cores); serving runs one batch at a time
        self.workers = 1
        # the TF-IDF half's scorer of a whole split (evaluate: ticketml.baseline's, on every core)
        self.tfidf_proba = None
        self.smoke_check()

    def smoke_check(self) -> None:
        """Answer the bundle's smoke examples (export_onnx: made-up tickets and the labels the
        exported model gave them) as at export, or refuse to load: ValueError saying how. A model
        whose files were damaged or mixed (a label map short of a class, another graph) loads
        but answers wrongly; this is where it stops. Examples made with another graph than the
        one loaded (export.use_int8 set against the export's choice) are not checked."""
        smoke = self.bundle.read("smoke")
        if not smoke or smoke.get("graph") != self.bundle.graph:
            return
        where = self.bundle.path("smoke")
        try:
            got = self.predict(smoke["texts"])
        except Exception as exc:  # noqa: BLE001 - any failure to answer is the finding
            raise ValueError(f"{where}: the model cannot answer its own examples: {exc}") from exc
        sure = smoke.get("sure", range(len(got)))
        wrong = [
            f"example {i}: {t} {got[i][t]!r}, exported {smoke[t][i]!r}"
            for i in sure
            for t in TASKS
            if got[i][t] != smoke[t][i]
        ]
        if wrong:
            raise ValueError(
                f"{where}: {len(wrong)} of {len(sure) * len(TASKS)} sure answers differ from "
                f"the export's ({'; '.join(wrong[:3])}): damaged or mismatched model files"
            )

    @classmethod
    def from_dir(
        cls,
        directory: str | os.PathLike,
        int8: bool | None = False,
        transformer_only: bool = False,
        **kwargs,
    ) -> TicketClassifier:
        """Serve the bundle in an export folder (artifacts/) or a copy of it: the fp32 graph,
        INT8 (`int8=True`), or the one the export chose (`int8=None`); `transformer_only`:
        without the TF-IDF half even where the model is a hybrid (what export scores)."""
        return cls(load(directory, int8, transformer_only), **kwargs)

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text (truncated to max_length, not padded); scoring a whole split
        (workers > 1) tokenises with the library's threads too."""
        return token_ids(
            self.tokenizer,
            list(texts),
            int(self.config["max_length"]),
            self.head_tokens,
            self.config.get("text_prefix", ""),
            threads=self.workers > 1,
        )

    def pad(self, ids: Sequence[Sequence[int]]) -> dict[str, np.ndarray]:
        """One batch padded to its longest row: the graph's two inputs."""
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        mask = np.arange(max(int(lengths.max(initial=0)), 1)) < lengths[:, None]
        input_ids = np.full(mask.shape, self.pad_id, dtype=np.int64)
        input_ids[mask] = np.fromiter((t for row in ids for t in row), np.int64, int(lengths.sum()))
        return {"input_ids": input_ids, "attention_mask": mask.astype(np.int64)}

    def encode(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        return self.pad(self.tokenize(texts))

    def batches(self, ids: Sequence[Sequence[int]], size: int | None = None) -> list[np.ndarray]:
        """Row indices in batches of `size` (default batch_size), by token count: each batch pads
        only to its own longest text."""
        order = np.argsort(np.fromiter(map(len, ids), np.int64, len(ids)), kind="stable")
        size = size or self.batch_size
        return [order[i : i + size] for i in range(0, len(order), size)]

    def logits(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Raw logits per task: tokenised once, run in batches of similar token counts (those
        the logit store already holds are read from it)."""
        texts = list(texts)
        if self.logit_store is None:
            return self.run_logits(texts)
        widths = {t: len(self.label_maps[t]) for t in TASKS}
        found, out = self.logit_store.get(texts, widths)
        todo = np.flatnonzero(~found)
        if len(todo):
            fresh = self.run_logits([texts[i] for i in todo])
            for t in TASKS:
                out[t][todo] = fresh[t]
            self.logit_store.put([texts[i] for i in todo], fresh)
        return out

    def run_logits(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        ids = self.tokenize(list(texts))
        out = {t: np.zeros((len(ids), len(self.label_maps[t])), dtype=np.float32) for t in TASKS}

        def run(idx: np.ndarray) -> None:
            batch = self.pad([ids[i] for i in idx])
            if self.runner is not None:
                results = self.runner(batch)
            else:
                results = self.session.run(self.output_names, batch, self.run_options)
            for task, values in zip(TASKS, results, strict=True):
                out[task][idx] = values

        batches = self.batches(ids)
        if self.workers > 1 and self.runner is None and len(batches) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(min(self.workers, len(batches))) as pool:
                list(pool.map(run, batches))  # each batch writes its own rows
        else:
            for idx in batches:
                run(idx)
        return out

    def clean(self, texts: Sequence[str]) -> list[str]:
        """The texts as the model was trained on them (its own text transform)."""
        return [clean_text(t, self.text_options) for t in texts]

    def transformer_parts(
        self, texts: Sequence[str]
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """The transformer's probabilities twice: tempered (softmax(z / T): what the hybrid
        blends) and calibrated (softmax(z / T + bias): what it serves alone)."""
        logits = self.logits(texts)
        tempered = {
            t: softmax(logits[t], float((self.scalings[t] or {}).get("temperature", 1.0)))
            for t in TASKS
        }
        return tempered, {t: scaled(logits[t], self.scalings[t]) for t in TASKS}

    def transformer_proba(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Calibrated probabilities of the transformer alone."""
        return self.transformer_parts(texts)[1]

    def blend(
        self,
        transformer: dict[str, np.ndarray],
        baseline: dict[str, np.ndarray],
        texts: Sequence[str],
        words: tuple | None = None,
    ) -> dict[str, np.ndarray]:
        """The served hybrid of the tempered transformer and the baseline on these (cleaned)
        texts (hybrid_proba); `words`: their word block where the baseline made it already."""
        return hybrid_proba(
            self.hybrid,
            transformer,
            baseline,
            scripts=text_scripts(texts),
            neighbours=self.neighbour_votes(texts, words),
        )

    def neighbour_votes(
        self, texts: Sequence[str], words: tuple | None = None
    ) -> dict[str, np.ndarray] | None:
        """The training tickets' votes on these (cleaned) texts, per task whose pool weighs
        them (pyfunc.neighbours), searched with their word block (`words`, else made here);
        None where none does."""
        if self.neighbours is None:
            return None
        if words is None:
            words = self.tfidf.features.word_block(list(texts))
        found = self.neighbours.search(words, len(texts), workers=self.workers)
        return self.neighbours.votes_for(self.hybrid, found)

    @property
    def hybrid_summary(self) -> dict[str, dict]:
        """Per task, how the hybrid combines its halves (method, and its weights)."""
        return {
            t: {"method": e.get("method", "blend")}
            | {
                k: e[k]
                for k in ("transformer_weight", "baseline_weight", "by_script", "C")
                if k in e
            }
            for t, e in self.hybrid.items()
        }

    @property
    def served(self) -> str:
        """The component this model serves: "hybrid" or "transformer"."""
        return "hybrid" if self.tfidf is not None else "transformer"

    def components(self, texts: Sequence[str]) -> dict[str, dict[str, np.ndarray]]:
        """What the served probabilities are made of, from the texts as received: the
        transformer's (calibrated) and, in a hybrid, the baseline's and their calibrated blend."""
        texts = self.clean(texts)
        tempered, calibrated = self.transformer_parts(texts)
        parts = {"transformer": calibrated}
        if self.tfidf is not None:
            if self.tfidf_proba is not None:  # a whole split's (evaluate)
                parts["baseline"], words = self.tfidf_proba(texts), None
            else:  # a request's: its word block made once, for the baseline and the votes
                blocks = self.tfidf.features.transform(texts)
                parts["baseline"], words = self.tfidf.predict_proba(texts, blocks), blocks[0]
            parts["hybrid"] = self.blend(tempered, parts["baseline"], texts, words)
        return parts

    def decisions(self, name: str, probs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Label indices of one component's probabilities (see pyfunc.probability.decide)."""
        return decide_tasks(
            probs, {"transformer": self.scalings, "hybrid": self.hybrid_scalings}.get(name)
        )

    def predict_proba(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """The served probabilities: the transformer's, or in a hybrid the calibrated blend."""
        return self.components(texts)[self.served]

    def predict(self, texts: Sequence[str], min_confidence: float | None = None) -> list[dict]:
        """One dict per text: topic, priority, topic_scores, priority_scores (+ needs_review)."""
        if not texts:
            return []
        probs = self.predict_proba(texts)
        labels = self.decisions(self.served, probs)
        rows = []
        for i in range(len(texts)):
            row: dict = {}
            for task in TASKS:
                row[task] = self.label_maps[task][int(labels[task][i])]
            for task in TASKS:
                row[f"{task}_scores"] = {
                    label: round(float(s), 6)
                    for label, s in zip(self.label_maps[task], probs[task][i], strict=True)
                }
            if min_confidence is not None:
                # how sure the model is of the topic it gives (with a bias-corrected map the
                # label can be a close second to the top score: it is then less sure)
                chosen = probs["topic"][i, labels["topic"][i]]
                row["needs_review"] = bool(chosen < float(min_confidence))
            rows.append(row)
        return rows
