"""Noise family: additive Gaussian, Poisson (shot) and speckle noise; sigma in 8-bit units."""

from __future__ import annotations

import torch
from torch import Tensor

from girml.degradations.ops import generator, luminance, register_op


@register_op("gaussian_noise", family="noise", domain={"sigma": (0.0, 255.0), "gray": (0, 1)})
def gaussian_noise(image: Tensor, sigma: float, gray: bool = False, *, seed: int) -> Tensor:
    """Add white Gaussian noise.

    Args:
        image: (B,C,H,W) float in [0,1].
        sigma: standard deviation in 8-bit units (``sigma / 255`` in [0,1] units).
        gray: one noise field shared by all channels instead of one per channel.
        seed: noise realisation.

    Returns:
        (B,C,H,W) float in [0,1].
    """
    b, c, h, w = image.shape
    noise = torch.randn((b, 1 if gray else c, h, w), generator=generator(seed), dtype=image.dtype)
    return image + noise * (sigma / 255.0)


@register_op("poisson_noise", family="noise", domain={"scale": (1.0, 10000.0), "gray": (0, 1)})
def poisson_noise(image: Tensor, scale: float, gray: bool = False, *, seed: int) -> Tensor:
    """Add shot noise: photon counts ``Poisson(x * scale) / scale``, so variance is x / scale.

    Args:
        image: (B,C,H,W) float in [0,1].
        scale: photons at full intensity; higher means less noise.
        gray: draw the noise on the luma and add the same noise to every channel.
        seed: noise realisation.

    Returns:
        (B,C,H,W) float in [0,1].
    """
    base = luminance(image) if gray else image
    counts = torch.poisson(base.clamp(0.0, 1.0) * scale, generator=generator(seed))
    return image + (counts / scale - base)


@register_op("speckle_noise", family="noise", domain={"sigma": (0.0, 255.0)})
def speckle_noise(image: Tensor, sigma: float, *, seed: int) -> Tensor:
    """Add multiplicative noise ``x + x * n`` with ``n ~ N(0, sigma / 255)`` per pixel.

    Args:
        image: (B,C,H,W) float in [0,1].
        sigma: standard deviation of ``n`` in 8-bit units.
        seed: noise realisation.

    Returns:
        (B,C,H,W) float in [0,1].
    """
    noise = torch.randn(image.shape, generator=generator(seed), dtype=image.dtype)
    return image + image * noise * (sigma / 255.0)
