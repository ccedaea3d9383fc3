"""Geometric self-ensemble: a network run on flips/transposes of its input, averaged."""

from __future__ import annotations

import torch
from torch import nn

SELF_ENSEMBLE_SIZES = (1, 2, 4, 8)
# Views of the same shape run as one batch while the batch holds at most this many pixels:
# on the CPU the x8 ensemble of a 128-px crop took 0.27 s batched against 0.39-0.47 s one view
# at a time (BENCHMARKS.md, "Whole photos"); bigger inputs keep one view's memory.
BATCH_VIEW_PIXELS = 8 * 256 * 256


class SelfEnsemble(nn.Module):
    """A network run on ``n`` flips/transposes of its input, each output mapped back and the
    ``n`` averaged: EDSR's geometric self-ensemble ("+" results; Lim et al., CVPRW 2017).

    Views ``t = 0..n-1``: bit 0 flips the width, bit 1 the height, bit 2 transposes. The
    independent errors of the views partly cancel; a network whose output is already
    flip-equivariant gives the same output. Costs ``n`` forward passes; views of one shape (all
    of them for a square input, else the transposed and the others) run as one batch when it
    stays within :data:`BATCH_VIEW_PIXELS`. The network must treat the samples of a batch
    independently (the restoration networks do).

    Args:
        net: (B,C,H,W) -> (B,C,H,W) restoration network (any size; kept as ``net``).
        n: 1, 2, 4 or 8.
    """

    def __init__(self, net: nn.Module, n: int) -> None:
        super().__init__()
        if n not in SELF_ENSEMBLE_SIZES:
            raise ValueError(f"self-ensemble size must be one of {SELF_ENSEMBLE_SIZES}, got {n}")
        self.net = net
        self.n = n
        if hasattr(net, "size_multiple"):
            self.size_multiple = net.size_multiple

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = None
        for group in self._groups(x):
            out = self.net(torch.cat([view(x, t, forward=True) for t in group]))
            for k, t in enumerate(group):
                back = view(out[k * x.shape[0] : (k + 1) * x.shape[0]], t, forward=False)
                total = back if total is None else total + back
        assert total is not None
        return total / self.n

    def _groups(self, x: torch.Tensor) -> list[list[int]]:
        """The views run together: one shape per batch, within :data:`BATCH_VIEW_PIXELS`."""
        views = list(range(self.n))
        per_view = x.shape[0] * x.shape[-2] * x.shape[-1]
        if per_view * self.n > BATCH_VIEW_PIXELS:
            return [[t] for t in views]
        if x.shape[-2] == x.shape[-1]:
            return [views]
        return [g for g in ([t for t in views if not t & 4], [t for t in views if t & 4]) if g]


def view(x: torch.Tensor, t: int, forward: bool) -> torch.Tensor:
    """View ``t`` of :class:`SelfEnsemble` (``forward=False``: its inverse)."""
    if not forward and t & 4:
        x = x.transpose(-1, -2)
    if t & 1:
        x = x.flip(-1)
    if t & 2:
        x = x.flip(-2)
    if forward and t & 4:
        x = x.transpose(-1, -2)
    return x


def with_self_ensemble(model: nn.Module, n: int) -> nn.Module:
    """``model`` itself for ``n == 1``, else :class:`SelfEnsemble` of it (same train/eval mode).

    Raises:
        ValueError: ``n`` not in :data:`SELF_ENSEMBLE_SIZES`.
    """
    if n == 1:
        return model
    return SelfEnsemble(model, n).train(model.training)
