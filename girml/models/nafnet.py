"""NAFNet: a nonlinear-activation-free U-Net for image restoration.

Chen, Chu, Zhang, Sun, "Simple Baselines for Image Restoration", ECCV 2022, arXiv 2204.04676.
Block names follow the paper: :class:`LayerNorm2d`, :class:`SimpleGate`, simplified channel
attention :class:`SCA`, :class:`NAFBlock`.
"""

from __future__ import annotations

import torch
from torch import nn

from girml.config import ModelConfig
from girml.models.blocks import RestorationNet


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel axis of a (B,C,H,W) tensor, with per-channel affine."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=1, keepdim=True)
        var = (x - mean).pow(2).mean(dim=1, keepdim=True)
        return (x - mean) * torch.rsqrt(var + self.eps) * self.weight + self.bias


class SimpleGate(nn.Module):
    """Split channels in two halves and multiply them: (B,2C,H,W) -> (B,C,H,W)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return a * b


class SCA(nn.Module):
    """Simplified channel attention: ``x * conv1x1(global_avg_pool(x))``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv(self.pool(x))


class NAFBlock(nn.Module):
    """NAFNet block: (B,C,H,W) -> (B,C,H,W).

    Spatial part: LayerNorm -> 1x1 conv (x2 channels) -> 3x3 depthwise conv -> SimpleGate -> SCA
    -> 1x1 conv, added with a learned per-channel scale ``beta``; channel part: LayerNorm -> 1x1
    conv (x2) -> SimpleGate -> 1x1 conv, added with scale ``gamma``. As in the paper, ``beta``
    and ``gamma`` start at zero, so a fresh block is the identity.
    """

    def __init__(self, channels: int, dw_expand: int = 2, ffn_expand: int = 2) -> None:
        super().__init__()
        dw = channels * dw_expand
        ffn = channels * ffn_expand
        self.norm1 = LayerNorm2d(channels)
        self.conv1 = nn.Conv2d(channels, dw, 1)
        self.conv2 = nn.Conv2d(dw, dw, 3, padding=1, groups=dw)
        self.gate = SimpleGate()
        self.sca = SCA(dw // 2)
        self.conv3 = nn.Conv2d(dw // 2, channels, 1)
        self.norm2 = LayerNorm2d(channels)
        self.conv4 = nn.Conv2d(channels, ffn, 1)
        self.conv5 = nn.Conv2d(ffn // 2, channels, 1)
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv3(self.sca(self.gate(self.conv2(self.conv1(self.norm1(x))))))
        x = x + y * self.beta
        y = self.conv5(self.gate(self.conv4(self.norm2(x))))
        return x + y * self.gamma


def _stack(channels: int, count: int) -> nn.Sequential:
    return nn.Sequential(*(NAFBlock(channels) for _ in range(count)))


class NAFNet(RestorationNet):
    """NAFNet U-Net: (B,3,H,W) in [0,1] -> (B,3,H,W), global residual, any input size.

    ``len(cfg.enc_blocks)`` levels; level ``i`` works at ``cfg.width * 2**i`` channels.
    Downsampling is a stride-2 2x2 conv doubling channels; upsampling a 1x1 conv then
    PixelShuffle(2) halving them; encoder features are added to the decoder (skip adds).
    Inputs are padded internally to a multiple of ``size_multiple = 2**levels``.

    Args:
        cfg: uses ``width``, ``enc_blocks``, ``middle_blocks``, ``dec_blocks`` (ones if None).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        levels = len(cfg.enc_blocks)
        dec_blocks = cfg.dec_blocks if cfg.dec_blocks is not None else [1] * levels
        widths = [cfg.width * 2**i for i in range(levels)]
        self.size_multiple = 2**levels
        self.intro = nn.Conv2d(3, cfg.width, 3, padding=1)
        self.encoders = nn.ModuleList(
            _stack(c, n) for c, n in zip(widths, cfg.enc_blocks, strict=True)
        )
        self.downs = nn.ModuleList(nn.Conv2d(c, 2 * c, 2, stride=2) for c in widths)
        self.middle = _stack(2 * widths[-1], cfg.middle_blocks)
        self.ups = nn.ModuleList(
            nn.Sequential(nn.Conv2d(2 * c, 4 * c, 1, bias=False), nn.PixelShuffle(2))
            for c in widths
        )
        self.decoders = nn.ModuleList(_stack(c, n) for c, n in zip(widths, dec_blocks, strict=True))
        self.ending = nn.Conv2d(cfg.width, 3, 3, padding=1)
        # Start as the identity map (output = input + 0), like the zero-initialised block
        # scales: a short CPU run then improves on the input instead of first undoing noise.
        nn.init.zeros_(self.ending.weight)
        nn.init.zeros_(self.ending.bias)

    def modulate(self, level: int, feat: torch.Tensor) -> torch.Tensor:
        """Hook applied to the decoder feature of ``level`` before its blocks (identity here)."""
        return feat

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.intro(x)
        skips = []
        for encoder, down in zip(self.encoders, self.downs, strict=True):
            feat = encoder(feat)
            skips.append(feat)
            feat = down(feat)
        feat = self.middle(feat)
        for level in reversed(range(len(self.decoders))):
            feat = self.ups[level](feat) + skips[level]
            feat = self.decoders[level](self.modulate(level, feat))
        return self.ending(feat)
