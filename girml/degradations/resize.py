"""Resize family: same-size super-resolution degradation and true low-resolution downsampling."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from girml.degradations.ops import register_op

MODES = ("area", "bilinear", "bicubic")
SCALE_DOMAIN = (1.0, 16.0)


def _interpolate(image: Tensor, size: tuple[int, int], mode: str) -> Tensor:
    if mode == "area":
        return F.interpolate(image, size=size, mode=mode)
    return F.interpolate(image, size=size, mode=mode, align_corners=False)


@register_op(
    "resize",
    family="resize",
    domain={"scale": SCALE_DOMAIN, "down_mode": MODES, "up_mode": MODES},
)
def resize(
    image: Tensor, scale: float, down_mode: str = "bicubic", up_mode: str = "bicubic"
) -> Tensor:
    """Downscale by ``scale`` then upscale back to the exact input size.

    Args:
        image: (B,C,H,W) float in [0,1].
        scale: downscaling factor (>= 1); the small image is (round(H/scale), round(W/scale)),
            at least 1x1.
        down_mode: interpolation used to shrink (``area``, ``bilinear``, ``bicubic``).
        up_mode: interpolation used to enlarge back.

    Returns:
        (B,C,H,W) float in [0,1].
    """
    height, width = image.shape[-2:]
    small_size = (max(1, round(height / scale)), max(1, round(width / scale)))
    small = _interpolate(image, small_size, down_mode)
    return _interpolate(small, (height, width), up_mode)


@register_op("downsample", family="resize", domain={"scale": SCALE_DOMAIN, "mode": MODES})
def downsample(image: Tensor, scale: float, mode: str = "bicubic") -> Tensor:
    """Shrink to a true low-resolution image (the only op that changes the spatial size).

    Args:
        image: (B,C,H,W) float in [0,1].
        scale: downscaling factor (>= 1).
        mode: interpolation (``area``, ``bilinear``, ``bicubic``).

    Returns:
        (B,C,round(H/scale),round(W/scale)) float in [0,1].

    Raises:
        ValueError: the output would have no pixels.
    """
    height, width = image.shape[-2:]
    size = (round(height / scale), round(width / scale))
    if min(size) < 1:
        raise ValueError(
            f"downsample: scale {scale!r} leaves no pixels of a {height}x{width} image"
        )
    return _interpolate(image, size, mode)
