"""Plain residual CNN baseline (no downsampling, no attention)."""

from __future__ import annotations

import torch
from torch import nn

from girml.config import ModelConfig
from girml.models.blocks import RestorationNet


class ResBlock(nn.Module):
    """conv3x3 -> ReLU -> conv3x3 with an identity skip: (B,C,H,W) -> (B,C,H,W)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class PlainCNN(RestorationNet):
    """conv -> ``plain_blocks`` x :class:`ResBlock` at ``width`` channels -> conv, plus input.

    Args:
        cfg: uses ``width`` and ``plain_blocks``.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.size_multiple = 1
        self.head = nn.Conv2d(3, cfg.width, 3, padding=1)
        self.body = nn.Sequential(*(ResBlock(cfg.width) for _ in range(cfg.plain_blocks)))
        self.tail = nn.Conv2d(cfg.width, 3, 3, padding=1)
        nn.init.zeros_(self.tail.weight)  # start as the identity map (global residual)
        nn.init.zeros_(self.tail.bias)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.body(self.head(x)))
