"""The learning-rate schedule and the optimizer: AdamW, linear warm-up, then a half cosine.

:func:`build_optimizer` and :func:`build_scheduler` make what :func:`girml.training.loop.train`
prepares; the schedule is stepped once per optimizer step, so :func:`lr_factor` counts optimizer
steps, not micro-batches.
"""

from __future__ import annotations

import functools
import math

from torch import nn
from torch.optim import AdamW, Optimizer
from torch.optim.lr_scheduler import LambdaLR

from girml.config import TrainConfig


def lr_factor(step: int, warmup_steps: int, total_steps: int, min_lr_ratio: float) -> float:
    """Learning-rate multiplier for 0-based optimizer step ``step``.

    Linear warm-up ``(step + 1) / (warmup_steps + 1)`` for the first ``warmup_steps`` steps,
    then a half cosine from 1 at ``warmup_steps`` down to ``min_lr_ratio`` at ``total_steps``
    (and after).
    """
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if warmup_steps < 0 or total_steps < 1:
        raise ValueError(
            f"need warmup_steps >= 0 and total_steps >= 1, got {warmup_steps}, {total_steps}"
        )
    if not 0.0 <= min_lr_ratio <= 1.0:
        raise ValueError(f"min_lr_ratio must be in [0, 1], got {min_lr_ratio}")
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> AdamW:
    """AdamW over every parameter with ``cfg.lr``, ``cfg.betas`` and ``cfg.weight_decay``.

    ``cfg.fused_optim`` selects the fused kernel (one pass over all parameters, CPU and CUDA);
    otherwise the multi-tensor ``foreach`` implementation.
    """
    impl = {"fused": True} if cfg.fused_optim else {"foreach": True}
    return AdamW(
        model.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay, **impl
    )


def build_scheduler(optimizer: Optimizer, cfg: TrainConfig) -> LambdaLR:
    """A ``LambdaLR`` applying :func:`lr_factor`; step it once per optimizer step."""
    factor = functools.partial(
        lr_factor,
        warmup_steps=cfg.warmup_steps,
        total_steps=cfg.steps,
        min_lr_ratio=cfg.min_lr_ratio,
    )
    return LambdaLR(optimizer, factor)
