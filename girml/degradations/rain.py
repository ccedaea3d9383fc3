"""Rain family: synthetic streaks (sparse seeds convolved with a rotated line) screened on top."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from girml.degradations.blur import gaussian_kernel
from girml.degradations.ops import apply_kernel, generator, kernel_grid, register_op

REFERENCE_AREA = 256 * 256  # ``count`` is the number of streaks per this many pixels
_MIN_DROP = 0.5  # per-streak brightness is uniform in [_MIN_DROP, 1] times ``intensity``
_SOFTEN_SIGMA = 0.5


def streak_kernel(length: float, width: float, angle: float) -> Tensor:
    """Anti-aliased line segment through the kernel centre (peak 1, not normalised).

    Args:
        length: segment length in pixels, > 0.
        width: segment width in pixels, > 0.
        angle: clockwise tilt from vertical, degrees.

    Returns:
        (k,k) float64 in [0,1], k odd and large enough to hold the segment.
    """
    if not (length > 0 and width > 0):
        raise ValueError(f"streak_kernel: length and width must be > 0, got {length}, {width}")
    size = 2 * math.ceil((length + width) / 2) + 3
    xx, yy = kernel_grid(size)
    dx, dy = math.sin(math.radians(angle)), math.cos(math.radians(angle))
    along = (xx * dx + yy * dy).abs()
    across = (xx * dy - yy * dx).abs()
    return (width / 2 + 0.5 - across).clamp(0.0, 1.0) * (length / 2 + 0.5 - along).clamp(0.0, 1.0)


@register_op(
    "rain",
    family="rain",
    domain={
        "count": (0.0, 2000.0),
        "length": (1.0, 64.0),
        "width": (0.5, 5.0),
        "angle": (-90.0, 90.0),
        "intensity": (0.0, 1.0),
    },
)
def rain(
    image: Tensor,
    count: float,
    length: float,
    width: float = 1.0,
    angle: float = 0.0,
    intensity: float = 0.8,
    *,
    seed: int,
) -> Tensor:
    """Add rain streaks, blended with the screen mode ``1 - (1 - x)(1 - s)`` (never darker).

    Args:
        image: (B,C,H,W) float in [0,1].
        count: streaks per 256x256 pixels; each image gets round(count * H * W / 256**2).
        length: streak length in pixels.
        width: streak width in pixels.
        angle: tilt from vertical in degrees (positive leans right going down).
        intensity: brightness of the brightest streaks, in [0,1].
        seed: streak positions and brightnesses (different for each image of the batch).

    Returns:
        (B,C,H,W) float in [0,1].
    """
    batch, _, height, width_px = image.shape
    n_streaks = round(count * height * width_px / REFERENCE_AREA)
    gen = generator(seed)
    where = torch.randint(height * width_px, (batch, n_streaks), generator=gen)
    drops = _MIN_DROP + (1.0 - _MIN_DROP) * torch.rand(
        (batch, n_streaks), generator=gen, dtype=image.dtype
    )
    seeds = torch.zeros(batch, height * width_px, dtype=image.dtype).scatter_add_(1, where, drops)
    seeds = seeds.view(batch, 1, height, width_px)
    streaks = apply_kernel(seeds, streak_kernel(length, width, angle), padding="constant")
    streaks = apply_kernel(streaks.clamp(0.0, 1.0), gaussian_kernel(_SOFTEN_SIGMA))
    layer = intensity * streaks.clamp(0.0, 1.0)
    return 1.0 - (1.0 - image) * (1.0 - layer)
