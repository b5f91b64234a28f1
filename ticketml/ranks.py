"""Which process of a multi-process (DDP) training run this is: only rank zero logs to MLflow,
writes files and registers; the others train and stop."""

from __future__ import annotations

import os


def is_rank_zero() -> bool:
    """Rank zero of every launcher Lightning supports (its own subprocess launcher, torchrun,
    SLURM): no rank variable set, or all of them 0."""
    names = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")
    return all(int(os.environ.get(name, "0") or 0) == 0 for name in names)
