"""Geometric self-ensemble: a network run on flips/transposes of its input, averaged."""

from __future__ import annotations

import torch
from torch import nn

SELF_ENSEMBLE_SIZES = (1, 2, 4, 8)


class SelfEnsemble(nn.Module):
    """A network run on ``n`` flips/transposes of its input, each output mapped back and the
    ``n`` averaged: EDSR's geometric self-ensemble ("+" results; Lim et al., CVPRW 2017).

    Views ``t = 0..n-1``: bit 0 flips the width, bit 1 the height, bit 2 transposes. The
    independent errors of the views partly cancel; a network whose output is already
    flip-equivariant gives the same output. Costs ``n`` forward passes.

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
        for t in range(self.n):
            out = self.net(view(x, t, forward=True))
            out = view(out, t, forward=False)
            total = out if total is None else total + out
        assert total is not None
        return total / self.n


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
