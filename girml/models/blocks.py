"""Layers shared by the restoration architectures."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn

from girml.core.inference import crop_to, pad_to_multiple


class RestorationNet(nn.Module, ABC):
    """Base of every architecture: (B,3,H,W) -> (B,3,H,W) with a global residual, any size.

    The input is padded (reflect) to a multiple of :attr:`size_multiple`, ``input +
    residual(input)`` is computed, and the result is cropped back to the input size.
    """

    size_multiple: int = 1

    @abstractmethod
    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """(B,3,H,W) -> (B,3,H,W) correction, with H and W multiples of ``size_multiple``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Restore a batch.

        Args:
            x: (B,3,H,W) float tensor in [0,1], any H and W.

        Returns:
            (B,3,H,W) float tensor (not clamped).
        """
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected a (B,3,H,W) tensor, got shape {tuple(x.shape)}")
        padded, size = pad_to_multiple(x, self.size_multiple)
        return crop_to(padded + self.residual(padded), size)
