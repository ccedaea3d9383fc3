"""Low-light family: gamma darkening, exposure scaling and sensor read noise."""

from __future__ import annotations

import torch
from torch import Tensor

from girml.degradations.ops import generator, register_op


@register_op(
    "low_light",
    family="lowlight",
    domain={"gamma": (1.0, 8.0), "exposure": (0.01, 1.0), "noise_sigma": (0.0, 255.0)},
)
def low_light(
    image: Tensor, gamma: float, exposure: float, noise_sigma: float = 0.0, *, seed: int
) -> Tensor:
    """Darken ``x -> exposure * x ** gamma``, then add Gaussian read noise in the dark image.

    The domain (gamma >= 1, exposure <= 1) guarantees the noise-free result is never brighter.

    Args:
        image: (B,C,H,W) float in [0,1].
        gamma: tone exponent.
        exposure: linear gain.
        noise_sigma: read-noise standard deviation in 8-bit units.
        seed: noise realisation.

    Returns:
        (B,C,H,W) float in [0,1].
    """
    dark = exposure * image.clamp(0.0, 1.0) ** gamma
    noise = torch.randn(image.shape, generator=generator(seed), dtype=image.dtype)
    return dark + noise * (noise_sigma / 255.0)
