"""Multi-task LightningModule: shared encoder, pooling, dropout, one linear head per task."""

from __future__ import annotations

from contextlib import nullcontext

import lightning as L
import numpy as np
import torch
from torch import nn

from ticketml.encoder import load_encoder
from ticketml.metrics import scores_from_confusion

POOLINGS = ("mean", "cls", "mean_max")


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mask = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-6)


def max_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Each dimension's largest value over the real tokens (padding never wins): a rare
    identifier's strong feature survives where the mean dilutes it over a long ticket."""
    return hidden.masked_fill(mask.unsqueeze(-1) == 0, torch.finfo(hidden.dtype).min).amax(1)


def repeated_blocks(encoder: nn.Module) -> nn.ModuleList | None:
    """The encoder's stack of identical layers (BERT's, MPNet's `encoder.layer`): the largest
    nn.ModuleList of two or more modules of one class; None where it has none."""
    stacks = [
        m
        for m in encoder.modules()
        if isinstance(m, nn.ModuleList) and len(m) > 1 and len({type(b) for b in m}) == 1
    ]
    return max(stacks, key=lambda m: sum(p.numel() for p in m.parameters()), default=None)


def compile_encoder(encoder: nn.Module, **options) -> str:
    """torch.compile the encoder in place (parameter names, so checkpoints and export, stay the
    same), by region: each of its repeated layers is compiled, and since they share one code
    object Dynamo traces and Inductor compiles one graph (dynamic widths) for all of them, where
    compiling the whole encoder compiles every layer's kernels into one large graph (cold: 30 s
    against 67 s for MiniLM on 2 CPU cores; bench/train_throughput.py --compile on a GPU).
    Embeddings and pooling run eagerly. An encoder without such a stack is compiled whole.
    Returns what was compiled: "blocks" or "whole"."""
    options = {"dynamic": True, **options}
    blocks = repeated_blocks(encoder)
    if blocks is None:
        encoder.compile(**options)
        return "whole"
    for block in blocks:
        block.compile(**options)
    return "blocks"


def bag_of_tokens(table: nn.Embedding, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """A linear layer over the bag of the tokens the encoder reads (model.lexical): each token's
    row of `table` summed over the real tokens, over the square root of their count (long and
    short tickets on one scale). Gather, multiply and sum: one ONNX graph with the encoder."""
    mask = mask.unsqueeze(-1).to(table.weight.dtype)
    return (table(input_ids) * mask).sum(1) / mask.sum(1).clamp(min=1.0).sqrt()


def expert_product(share, deep: torch.Tensor, lexical: torch.Tensor) -> torch.Tensor:
    """model.lexical's product of experts: share x log p_encoder + (1 - share) x log p_tokens,
    from each expert's logits (the logits of a distribution)."""
    return share * deep.float().log_softmax(-1) + (1 - share) * lexical.float().log_softmax(-1)


def ensemble(members: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """model.members: the members' logits per task as one distribution's logits, the mean of
    their log-probabilities (a normalised geometric mean: the product of equal experts); one
    member's logits as they are."""
    if len(members) == 1:
        return members[0]
    return {
        task: torch.stack([m[task].float().log_softmax(-1) for m in members]).mean(0)
        for task in members[0]
    }


class Member(nn.Module):
    """model.members: one more fine-tuned copy of the encoder with task heads of its own (its
    own initial heads and dropout masks), trained on its own loss beside the first."""

    def __init__(self, encoder: nn.Module, heads: nn.ModuleDict):
        super().__init__()
        self.encoder, self.heads = encoder, heads


def pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "mean_max":
        return torch.cat([mean_pool(hidden, mask), max_pool(hidden, mask)], dim=-1)
    return mean_pool(hidden, mask)


class MultiTaskClassifier(L.LightningModule):
    def __init__(
        self,
        encoder_name: str,
        num_labels: dict[str, int],
        pooling: str = "mean",
        dropout: float = 0.1,
        loss_weights: dict[str, float] | None = None,
        class_weights: dict[str, list[float]] | None = None,
        learning_rate: float = 1e-4,
        head_learning_rate: float | None = None,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.1,
        warmup_epochs: float | None = None,
        lr_schedule: str = "linear",
        layer_decay: float = 1.0,
        freeze_encoder: bool = False,
        label_maps: dict | None = None,
        max_length: int = 128,
        text_prefix: str = "",
        truncation: str = "head",
        head_tokens: int = 0,
        distill_weight: float = 0.0,
        baseline_product: bool = False,
        lexical: bool = False,
        lexical_learning_rate: float | None = None,
        members: int = 1,
    ):
        # label_maps / max_length / text_prefix travel in the checkpoint for export and serving.
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"model.pooling={pooling!r} must be one of {', '.join(POOLINGS)}")
        if lr_schedule not in SCHEDULES:
            raise ValueError(f"train.lr_schedule={lr_schedule!r} must be one of {SCHEDULES}")
        if not 0 < layer_decay <= 1:
            raise ValueError(f"train.layer_decay={layer_decay!r} must be in (0, 1]")
        if lexical and baseline_product:
            raise ValueError("model.lexical and train.baseline_product cannot be combined")
        if isinstance(members, bool) or not isinstance(members, int) or members < 1:
            raise ValueError(f"model.members={members!r} must be a whole number >= 1")
        self.save_hyperparameters()
        self.encoder = load_encoder(encoder_name)
        hidden = self.encoder.config.hidden_size * (2 if pooling == "mean_max" else 1)
        self.dropout = nn.Dropout(dropout)

        def heads() -> nn.ModuleDict:
            return nn.ModuleDict({task: nn.Linear(hidden, n) for task, n in num_labels.items()})

        self.heads = heads()
        # model.members > 1: the others, each an encoder and heads of its own (the first keeps
        # the names `encoder` and `heads`: a one-member checkpoint reads as it always did)
        self.others = nn.ModuleList(
            Member(load_encoder(encoder_name), heads()) for _ in range(members - 1)
        )
        if lexical:  # model.lexical: a second expert per task, linear in the tokens it reads
            vocab = self.encoder.get_input_embeddings().num_embeddings
            self.lexical = nn.ModuleDict({t: nn.Embedding(vocab, n) for t, n in num_labels.items()})
            for task, table in self.lexical.items():
                nn.init.zeros_(table.weight)  # starts with no opinion: uniform over the classes
                # the encoder's share of the product: 0.5 in training, then fitted on val
                # (train.fit_expert_weights); a buffer, so the checkpoint and ONNX graph carry it
                self.register_buffer(f"expert_weight_{task}", torch.tensor(0.5))
        self.loss_weights = {t: float((loss_weights or {}).get(t, 1.0)) for t in num_labels}
        for task, weights in (class_weights or {}).items():
            self.register_buffer(f"class_weight_{task}", torch.tensor(weights, dtype=torch.float))
        if freeze_encoder:
            for encoder, _ in self.pairs():
                encoder.requires_grad_(False)
        self._outputs: dict[str, list] = {}

    def pairs(self) -> list[tuple[nn.Module, nn.ModuleDict]]:
        """(encoder, task heads) of each member, the first (`encoder`, `heads`) first."""
        return [(self.encoder, self.heads), *((m.encoder, m.heads) for m in self.others)]

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Each task's logits: the encoder's head (with model.members > 1, the members'
        `ensemble`), or with model.lexical the product of the two experts, a x log p_encoder +
        (1 - a) x log p_tokens (a distribution's logits; a is the task's `expert_weight`)."""
        deep, lexical = self.experts(input_ids, attention_mask)
        if lexical is None:
            return deep
        return {task: self.product(task, deep[task], lexical[task]) for task in deep}

    def product(self, task: str, deep: torch.Tensor, lexical: torch.Tensor) -> torch.Tensor:
        return expert_product(getattr(self, f"expert_weight_{task}"), deep, lexical)

    def experts(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor] | None]:
        """The encoder heads' logits per task (the members' `ensemble`) and, with
        model.lexical, the token layer's (None without): each expert is trained on its own loss
        (training_step), so neither leans on the other, and served as their product (forward)."""
        members = self.member_logits(input_ids, attention_mask)
        return ensemble(members), self.token_logits(input_ids, attention_mask)

    def member_logits(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> list[dict[str, torch.Tensor]]:
        """Each member's task logits (model.members; one member: the encoder and its heads)."""
        # a compiled encoder (train.compile, compile_encoder) runs compiled for training steps
        # only: validation and scoring run it eagerly, so no second graph (eval mode, no grad)
        # is compiled for a few batches an epoch
        eager = nullcontext() if self.training else torch.compiler.set_stance("force_eager")
        out = []
        with eager:
            for encoder, heads in self.pairs():
                hidden = encoder(input_ids=input_ids, attention_mask=attention_mask)
                pooled = self.dropout(
                    pool(hidden.last_hidden_state, attention_mask, self.hparams.pooling)
                )
                out.append({task: head(pooled) for task, head in heads.items()})
        return out

    def token_logits(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> dict[str, torch.Tensor] | None:
        """model.lexical: the token layer's logits per task; None without it."""
        if not self.hparams.lexical:
            return None
        return {
            task: bag_of_tokens(table, input_ids, attention_mask)
            for task, table in self.lexical.items()
        }

    def joint(self, logits: dict[str, torch.Tensor], batch: dict) -> dict[str, torch.Tensor]:
        """train.baseline_product: the logits of the product of experts, the transformer's plus
        the log of the baseline's out-of-fold probabilities of the row (`{task}_teacher`), which
        the loss and validation score (the transformer learns what the baseline lacks; served
        as the hybrid's "product" combination); else the logits as they are."""
        if not self.hparams.baseline_product:
            return logits
        return {
            task: z.float() + torch.log(batch[f"{task}_teacher"].clamp(min=1e-12))
            for task, z in logits.items()
        }

    def _loss(
        self, logits: dict[str, torch.Tensor], batch: dict
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        parts = {}
        for task, task_logits in logits.items():
            weight = getattr(self, f"class_weight_{task}", None)
            # partial labels: a row without this task's label (-1) adds nothing to its loss; a
            # batch with none adds zero (cross_entropy's mean over no rows would be NaN)
            labels = batch[task]
            labelled = labels >= 0
            loss = nn.functional.cross_entropy(
                task_logits.float(), labels.clamp(min=0), reduction="none"
            )
            teacher = batch.get(f"{task}_teacher")
            if teacher is not None and self.hparams.distill_weight and self.training:
                # train.distill_weight: that share of the loss is the cross-entropy against the
                # TF-IDF baseline's out-of-fold probabilities of the row (soft targets)
                soft = -(teacher * nn.functional.log_softmax(task_logits.float(), -1)).sum(-1)
                a = float(self.hparams.distill_weight)
                loss = (1 - a) * loss + a * soft
            row_weight = labelled.float() * (
                weight[labels.clamp(min=0)] if weight is not None else 1
            )
            parts[task] = (loss * row_weight).sum() / row_weight.sum().clamp(min=1e-12)
        total = sum(self.loss_weights[t] * parts[t] for t in parts)
        return total, parts

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        inputs = batch["input_ids"], batch["attention_mask"]
        # each member on its own loss, as if trained alone; the ensemble is validated
        loss = sum(self._loss(self.joint(m, batch), batch)[0] for m in self.member_logits(*inputs))
        lexical = self.token_logits(*inputs)
        if lexical is not None:  # each expert on its own loss; the product is validated
            loss = loss + self._loss(lexical, batch)[0]
        # the epoch's mean only: a per-step value in the progress bar is read back every step,
        # a GPU sync that stalls the queue of kernels (bench/train_throughput.py)
        self.log(
            "train/loss",
            loss,
            on_step=False,
            on_epoch=True,
            prog_bar=True,
            batch_size=len(batch["input_ids"]),
        )
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        logits = self.joint(self(batch["input_ids"], batch["attention_mask"]), batch)
        loss, _ = self._loss(logits, batch)
        self.log("val/loss", loss, on_epoch=True, prog_bar=True, batch_size=len(batch["input_ids"]))
        for task in self.heads:  # kept on the device: one transfer at the end of the epoch
            self._outputs.setdefault(f"{task}_pred", []).append(logits[task].argmax(-1))
            self._outputs.setdefault(f"{task}_true", []).append(batch[task])

    def on_validation_epoch_end(self) -> None:
        """Validation accuracy and macro-F1 per task from the confusion matrix, summed over
        every process under DDP (each validates a share of the batches)."""
        if not self._outputs:
            return
        f1s = []
        for task in self.heads:
            n = self.hparams.num_labels[task]
            y_pred = torch.cat(self._outputs[f"{task}_pred"])
            y_true = torch.cat(self._outputs[f"{task}_true"])
            keep = y_true >= 0  # partial labels: scored on the rows labelled for the task
            y_pred, y_true = y_pred[keep], y_true[keep]
            confusion = torch.bincount(y_true * n + y_pred, minlength=n * n).reshape(n, n)
            if self.trainer.world_size > 1:
                confusion = self.all_gather(confusion).sum(0)
            accuracy, f1 = scores_from_confusion(confusion.cpu().numpy())
            self.log(f"val/{task}_accuracy", accuracy, sync_dist=False)
            self.log(f"val/{task}_macro_f1", f1, sync_dist=False)
            f1s.append(f1)
        self.log("val/mean_macro_f1", float(np.mean(f1s)), prog_bar=True)
        self._outputs = {}

    def configure_optimizers(self):
        hp = self.hparams
        groups = []
        for encoder, heads in self.pairs():
            groups += layer_groups(encoder, hp.learning_rate, hp.weight_decay, hp.layer_decay)
            groups += decay_groups(
                heads.named_parameters(), hp.head_learning_rate or hp.learning_rate, hp.weight_decay
            )
        if hp.lexical:
            groups += decay_groups(
                self.lexical.named_parameters(),
                hp.lexical_learning_rate or hp.learning_rate,
                hp.weight_decay,
            )
        return adamw_linear(self, groups, hp.warmup_ratio, hp.warmup_epochs, hp.lr_schedule)


NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight")


def decay_groups(named_parameters, lr: float, weight_decay: float) -> list[dict]:
    """AdamW parameter groups of the trainable parameters: weight decay on the weights, none on
    biases and LayerNorm."""
    params = [(n, p) for n, p in named_parameters if p.requires_grad]
    return [
        {
            "params": [p for n, p in params if not n.endswith(NO_DECAY)],
            "lr": lr,
            "weight_decay": weight_decay,
        },
        {"params": [p for n, p in params if n.endswith(NO_DECAY)], "lr": lr, "weight_decay": 0.0},
    ]


def layer_groups(encoder: nn.Module, lr: float, weight_decay: float, decay: float) -> list[dict]:
    """The encoder's AdamW groups with layer-wise learning-rate decay (train.layer_decay; Howard
    & Ruder 2018, ELECTRA's layer_decay): the top layer of its repeated stack trains at `lr`,
    each layer below at `decay` x the one above, the embeddings (what comes before the stack) at
    `decay` x the lowest layer; what else the encoder holds (MPNet's relative attention bias) at
    `lr`. The lower layers hold what pretraining learned about language, the upper ones
    adapt to the task. decay 1 (or an encoder without a stack): one rate."""
    blocks = repeated_blocks(encoder) if decay < 1 else None
    if blocks is None:
        return decay_groups(encoder.named_parameters(), lr, weight_decay)
    top = len(blocks)
    level = {id(p): i + 1 for i, block in enumerate(blocks) for p in block.parameters()}
    bands: dict[int, list] = {}
    for name, p in encoder.named_parameters():
        depth = level.get(id(p), 0 if name.startswith("embeddings.") else top)
        bands.setdefault(depth, []).append((name, p))
    return [
        group
        for depth, named in sorted(bands.items())
        for group in decay_groups(named, lr * decay ** (top - depth), weight_decay)
        if group["params"]
    ]


SCHEDULES = ("linear", "constant")


def adamw_linear(
    module: L.LightningModule,
    groups: list[dict],
    warmup_ratio: float,
    warmup_epochs: float | None = None,
    schedule: str = "linear",
) -> dict:
    """Lightning's optimizer config: AdamW over `groups` and, per step, a linear warm-up (over
    `warmup_epochs` epochs when given, else `warmup_ratio` of all the steps the epoch cap allows),
    then `linear`: a decay to zero at the cap, or `constant`: the peak rate until early stopping
    ends the fit."""
    from transformers import get_constant_schedule_with_warmup, get_linear_schedule_with_warmup

    # fused: one kernel for the whole update on a GPU instead of a few per parameter group
    optimizer = torch.optim.AdamW(
        [g for g in groups if g["params"]], fused=module.device.type == "cuda"
    )
    total = max(1, int(module.trainer.estimated_stepping_batches))
    if warmup_epochs is None:
        warmup = int(warmup_ratio * total)
    else:  # steps of one epoch: all the steps over the cap's epochs
        warmup = int(warmup_epochs * total / max(1, int(module.trainer.max_epochs or 1)))
    if schedule == "constant":
        scheduler = get_constant_schedule_with_warmup(optimizer, warmup)
    else:
        scheduler = get_linear_schedule_with_warmup(optimizer, warmup, total)
    return {
        "optimizer": optimizer,
        "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
    }


@torch.no_grad()
def predict_logits(
    model: MultiTaskClassifier,
    loader,
    autocast_dtype: torch.dtype | None = None,
    experts: bool = False,
):
    """Logits per task, rows in the split's order (batches carry their row `index`), on the
    model's device, under autocast to `autocast_dtype` when given (as in training); with
    `experts` (model.lexical), each expert's from the same pass instead: (the encoder heads',
    the token layer's)."""
    model.eval()
    device = model.device
    names = ("deep", "lexical") if experts else ("served",)
    parts: dict[tuple[str, str], list] = {(n, t): [] for n in names for t in model.heads}
    rows = []
    with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
        for batch in loader:
            inputs = (
                batch["input_ids"].to(device, non_blocking=True),
                batch["attention_mask"].to(device, non_blocking=True),
            )
            outputs = model.experts(*inputs) if experts else (model(*inputs),)
            out = dict(zip(names, outputs, strict=True))
            for (name, task), chunks in parts.items():
                chunks.append(out[name][task].float())
            rows.append(batch["index"])
    order = torch.cat(rows).numpy()
    result: dict[str, dict[str, np.ndarray]] = {n: {} for n in names}
    for (name, task), chunks in parts.items():
        values = torch.cat(chunks).cpu().numpy()
        result[name][task] = np.empty_like(values)
        result[name][task][order] = values
    return (result["deep"], result["lexical"]) if experts else result["served"]
