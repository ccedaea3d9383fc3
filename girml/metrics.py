"""Image quality metrics, one module for the whole project.

PSNR follows the BasicSR convention: 8-bit images, optional ``crop_border`` pixels removed on each
side, optional evaluation on the Y channel of ITU-R BT.601 YCbCr (``test_y``).
"""

from __future__ import annotations

import numpy as np


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """BT.601 luma (16-235 range) of an RGB image.

    Args:
        image: (H, W, 3) uint8 in [0, 255] or float in [0, 255].

    Returns:
        (H, W) float64 in [16, 235], as MATLAB's ``rgb2ycbcr`` (BasicSR's ``bgr2ycbcr``).
    """
    img = image.astype(np.float64)
    return img @ np.array([65.481, 128.553, 24.966]) / 255.0 + 16.0


def _prepare(img: np.ndarray, crop_border: int, test_y: bool) -> np.ndarray:
    if crop_border:
        img = img[crop_border:-crop_border, crop_border:-crop_border]
    return rgb_to_y(img) if test_y else img.astype(np.float64)


def psnr(a: np.ndarray, b: np.ndarray, crop_border: int = 0, test_y: bool = False) -> float:
    """Peak signal-to-noise ratio in dB between two 8-bit images.

    Args:
        a: (H, W, 3) uint8 in [0, 255].
        b: same shape as ``a``.
        crop_border: pixels removed on each side before computing.
        test_y: compute on the Y channel of BT.601 YCbCr instead of RGB.

    Returns:
        PSNR in dB; ``inf`` for identical images.
    """
    if a.shape != b.shape:
        raise ValueError(f"psnr needs equal shapes, got {a.shape} and {b.shape}")
    if crop_border < 0 or 2 * crop_border >= min(a.shape[:2]):
        raise ValueError(f"crop_border must be in [0, {min(a.shape[:2]) // 2}), got {crop_border}")
    mse = np.mean((_prepare(a, crop_border, test_y) - _prepare(b, crop_border, test_y)) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(255.0**2 / mse))
