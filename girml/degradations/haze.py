"""Haze family: the atmospheric scattering model ``I * t + A * (1 - t)``, ``t = exp(-beta d)``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from girml.degradations.ops import generator, luminance, register_op

# The depth proxy d in [0,1] is a convex blend of three [0,1] maps.
_ROW_WEIGHT = 0.6  # far at the top of the frame
_FIELD_WEIGHT = 0.3  # smooth random variation
_DARK_WEIGHT = 0.1  # dark regions a little farther (inverse luminance)
_FIELD_GRID = 4  # the random field is a 4x4 grid, bicubically upsampled


def depth_proxy(image: Tensor, seed: int) -> Tensor:
    """Pseudo depth for haze: row position, a smooth random field and inverse luminance.

    Args:
        image: (B,C,H,W) float in [0,1].
        seed: random field realisation (one field per image of the batch).

    Returns:
        (B,1,H,W) tensor of the image dtype in [0,1]; 1 is far.
    """
    batch, _, height, width = image.shape
    rows = torch.linspace(1.0, 0.0, height, dtype=image.dtype).view(1, 1, height, 1)
    coarse = torch.rand(
        (batch, 1, _FIELD_GRID, _FIELD_GRID), generator=generator(seed), dtype=image.dtype
    )
    field = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=True)
    depth = (
        _ROW_WEIGHT * rows
        + _FIELD_WEIGHT * field.clamp(0.0, 1.0)
        + _DARK_WEIGHT * (1.0 - luminance(image).clamp(0.0, 1.0))
    )
    return depth.clamp(0.0, 1.0)


@register_op("haze", family="haze", domain={"A": (0.0, 1.0), "beta": (0.0, 5.0)})
def haze(image: Tensor, A: float, beta: float, *, seed: int) -> Tensor:
    """Add haze: every pixel moves toward the airlight ``A`` by ``1 - exp(-beta * depth)``.

    Args:
        image: (B,C,H,W) float in [0,1].
        A: global atmospheric light (same for every channel).
        beta: scattering coefficient; larger is denser haze.
        seed: depth-field realisation (see :func:`depth_proxy`).

    Returns:
        (B,C,H,W) float in [0,1].
    """
    transmission = torch.exp(-beta * depth_proxy(image, seed))
    return image * transmission + A * (1.0 - transmission)
