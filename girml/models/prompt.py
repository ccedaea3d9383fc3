"""Degradation-aware NAFNet: decoder features modulated by prompts computed from the input.

The prompt mechanism follows PromptIR (Potlapalli, Zamir, Khan, Khan, "PromptIR: Prompting for
All-in-One Blind Image Restoration", NeurIPS 2023, arXiv 2306.13090) and the adaptive prompts
of MiOIR (Kong, Dong, Zhang, "Towards Effective Multiple-in-One Image Restoration: A
Sequential and Prompt Learning Strategy", arXiv 2401.03379):
each decoder level holds ``prompt_len`` learnable prompt components, mixed with weights
predicted from the feature itself, so no degradation label is needed at test time.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from girml.config import ModelConfig
from girml.core.pooling import global_pool
from girml.models.nafnet import NAFNet


class PromptBlock(nn.Module):
    """Input-conditioned prompt fused into a (B,C,H,W) feature by FiLM.

    ``weights = softmax(linear(GAP(feature)))`` (B, prompt_len) mixes the prompt components
    (prompt_len, C, S, S); a 3x3 conv turns the mixed prompt into a scale and a shift map, which
    are resized bilinearly to (H, W) and applied as ``out = feature * (1 + scale) + shift``.
    The conv runs at the prompt's S x S resolution, before the resize (both are linear, so this
    matches PromptIR's resize-then-conv up to the conv's footprint) to keep the block's cost
    independent of the image size. FiLM was chosen over concat + 1x1 conv because with the conv
    zero-initialised the block starts as the identity, so a fresh ``prompt_nafnet`` computes
    exactly what a fresh ``nafnet`` does.

    As in PromptIR the prompt spans the whole input, so under tiled inference each tile sees the
    full prompt; the mixing weights, not the spatial layout, carry the degradation information.
    """

    photo_pooling = True  # girml.core.pooling: under tiling, the weights pool over the whole photo

    def __init__(self, channels: int, prompt_len: int, prompt_size: int = 16) -> None:
        super().__init__()
        self.prompts = nn.Parameter(torch.rand(prompt_len, channels, prompt_size, prompt_size))
        self.linear = nn.Linear(channels, prompt_len)
        self.film = nn.Conv2d(channels, 2 * channels, 3, padding=1)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)

    def weights(self, feat: torch.Tensor) -> torch.Tensor:
        """(B,C,H,W) feature -> (B, prompt_len) mixing weights, each row summing to 1."""
        mean, _ = global_pool(self, feat, with_max=False)  # the photo's, under tiling
        return F.softmax(self.linear(mean.flatten(1)), dim=1)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        prompt = torch.einsum("bl,lchw->bchw", self.weights(feat), self.prompts)
        film = F.interpolate(
            self.film(prompt), size=feat.shape[-2:], mode="bilinear", align_corners=False
        )
        scale, shift = film.chunk(2, dim=1)
        return feat * (1 + scale) + shift


class PromptNAFNet(NAFNet):
    """NAFNet whose decoder feature at every level passes through a :class:`PromptBlock`.

    Args:
        cfg: the NAFNet fields plus ``prompt_len`` (prompt components per level).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        # Prompt side halves per level (16, 8, 4, 4, ...) as PromptIR's does with depth.
        self.prompts = nn.ModuleList(
            PromptBlock(cfg.width * 2**i, cfg.prompt_len, prompt_size=max(4, 16 >> i))
            for i in range(len(cfg.enc_blocks))
        )

    def modulate(self, level: int, feat: torch.Tensor) -> torch.Tensor:
        return self.prompts[level](feat)

    def prompt_weights(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Prompt mixing weights the model picks for ``x`` (costs one forward pass).

        Args:
            x: (B,3,H,W) float tensor in [0,1].

        Returns:
            One (B, prompt_len) tensor per level, level 0 (full resolution) first; rows sum to 1.
        """
        captured: dict[int, torch.Tensor] = {}
        hooks = [
            block.register_forward_pre_hook(
                lambda module, args, level=level: captured.__setitem__(
                    level, module.weights(args[0])
                )
            )
            for level, block in enumerate(self.prompts)
        ]
        try:
            with torch.inference_mode():
                self(x)
        finally:
            for hook in hooks:
                hook.remove()
        return [captured[level] for level in range(len(self.prompts))]
