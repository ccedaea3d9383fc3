"""What the loop checkpoints besides the model, optimizer and schedule: the weight average
(:class:`EMA`) and the bookkeeping (:class:`TrainState`: step counter, loop seconds, history).

Both have ``state_dict`` / ``load_state_dict``, so ``accelerator.register_for_checkpointing``
saves and restores them with every checkpoint.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


class EMA:
    """Exponential moving average of a model's weights.

    The decay warms up as ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates, so the
    average follows the fast early changes of short runs instead of the random init.

    Args:
        model: the raw model (copied; later updates read its parameters).
        decay: the long-run decay in (0, 1).
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay
        self.num_updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model``'s current weights; buffers are copied."""
        self.num_updates += 1
        decay = min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))
        # one multi-tensor kernel instead of a Python loop of small ones
        averages = list(self.module.parameters())
        current = [p.detach() for p in model.parameters()]
        if len(averages) != len(current):
            raise ValueError(f"EMA holds {len(averages)} parameters, model has {len(current)}")
        torch._foreach_lerp_(averages, current, 1.0 - decay)
        for avg, new in zip(self.module.buffers(), model.buffers(), strict=True):
            avg.copy_(new)

    def state_dict(self) -> dict[str, Any]:
        return {"module": self.module.state_dict(), "num_updates": self.num_updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["module"])
        self.num_updates = int(state["num_updates"])


class TrainState:
    """Checkpointed bookkeeping: optimizer steps done, loop seconds so far, history rows."""

    def __init__(self) -> None:
        self.step = 0
        self.train_seconds = 0.0
        self.history: list[dict[str, float]] = []

    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "train_seconds": self.train_seconds,
            "history": [dict(row) for row in self.history],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step = int(state["step"])
        self.train_seconds = float(state["train_seconds"])
        self.history = [dict(row) for row in state["history"]]
