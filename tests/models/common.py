"""What the architecture tests share: the registered names, a tiny config, smooth images and a
helper that moves a fresh network off its identity initialisation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from girml.config import ModelConfig

ARCH_NAMES = ["nafnet", "plain_cnn", "prompt_nafnet"]


def tiny_cfg(arch: str, **overrides: object) -> ModelConfig:
    """A width-8, two-level config of ``arch`` (``overrides`` replace its fields)."""
    fields: dict[str, object] = {
        "type": arch,
        "width": 8,
        "enc_blocks": [1, 1],
        "middle_blocks": 1,
        "prompt_len": 3,
        "plain_blocks": 2,
    }
    fields.update(overrides)
    return ModelConfig(**fields)


def smooth_images(n: int, height: int, width: int, seed: int) -> torch.Tensor:
    """(n,3,H,W) float32 in [0,1]: low-frequency random content, like a natural-image patch."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, max(2, height // 8), max(2, width // 8), generator=gen)
    return F.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)


def activate_blocks(model: nn.Module, scale: float = 0.5) -> None:
    """Give the zero-initialised parameters (NAFBlocks' beta/gamma, the output convolution)
    random values, as a trained model has."""
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith(("beta", "gamma")):
                param.normal_(0.0, scale)
            elif name.startswith(("ending.", "tail.")):
                param.normal_(0.0, 0.05)
