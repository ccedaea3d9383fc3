"""Restoration architectures, chosen by ``model.type`` in ``params.yaml``.

Every model maps (B,3,H,W) float in [0,1] to (B,3,H,W) as ``input + net(input)``, accepts any
input size (padding internally to ``model.size_multiple``) and is built by :func:`build_model`.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from girml.config import ModelConfig
from girml.core.inference import model_device
from girml.core.registry import Registry
from girml.models.nafnet import NAFNet
from girml.models.plain import PlainCNN
from girml.models.prompt import PromptNAFNet

ARCHS: Registry[type[nn.Module]] = Registry("architecture")
ARCHS.register("nafnet", paper="Chen et al., ECCV 2022, arXiv 2204.04676")(NAFNet)
ARCHS.register("prompt_nafnet", paper="Potlapalli et al., NeurIPS 2023, arXiv 2306.13090")(
    PromptNAFNet
)
ARCHS.register("plain_cnn", paper="plain residual CNN baseline")(PlainCNN)

__all__ = ["ARCHS", "NAFNet", "PlainCNN", "PromptNAFNet", "build_model", "model_stats"]


def build_model(cfg: ModelConfig) -> nn.Module:
    """Instantiate the architecture named by ``cfg.type``.

    Raises:
        KeyError: unknown ``cfg.type``; the message lists the registered names.
    """
    return ARCHS.get(cfg.type)(cfg)


def model_stats(model: nn.Module, height: int = 256, width: int = 256) -> dict[str, int]:
    """Parameter count and forward FLOPs for one (1,3,height,width) image.

    FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode``: matmuls and convolutions
    only, each multiply-add counted as 2 FLOPs (so FLOPs = 2 x MACs); elementwise ops, norms and
    pooling are not counted.

    Returns:
        ``{"params": int, "flops": int}``.
    """
    if height < 1 or width < 1:
        raise ValueError(f"height and width must be >= 1, got {height}x{width}")
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(1, 3, height, width, device=model_device(model)))
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "flops": int(counter.get_total_flops()),
    }
