"""JPEG family: a real codec round trip through Pillow."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from girml.core.imageio import to_tensor, to_uint8
from girml.degradations.ops import register_op


def _jpeg_round_trip(pixels: np.ndarray, quality: int) -> np.ndarray:
    """Encode and decode one (H,W,C) uint8 image (C in 1, 3) with Pillow's default settings."""
    buffer = io.BytesIO()
    Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels).save(
        buffer, format="JPEG", quality=quality
    )
    with Image.open(buffer) as decoded:
        return np.array(decoded, dtype=np.uint8).reshape(pixels.shape)


@register_op("jpeg", family="jpeg", domain={"quality": (1, 100)})
def jpeg(image: Tensor, quality: int) -> Tensor:
    """Compress every image of the batch with JPEG (Pillow, 4:2:0 chroma subsampling for RGB).

    Values are rounded to uint8 before encoding, so the output is on the 1/255 grid.

    Args:
        image: (B,C,H,W) float in [0,1], C = 1 (grayscale) or 3 (RGB).
        quality: JPEG quality, 1 (worst) to 100.

    Returns:
        (B,C,H,W) tensor of the input dtype, in [0,1].

    Raises:
        ValueError: C is neither 1 nor 3.
    """
    channels = image.shape[1]
    if channels not in (1, 3):
        raise ValueError(f"jpeg: image must have 1 or 3 channels, got {channels}")
    decoded = [to_tensor(_jpeg_round_trip(to_uint8(one), quality)) for one in image]
    return torch.cat(decoded).to(image.dtype)
