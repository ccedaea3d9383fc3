"""Image quality metrics, one package for the whole project.

The full-reference PSNR, SSIM and block shift live in :mod:`girml.metrics.fidelity`, the
no-reference NIQE in :mod:`girml.metrics.niqe` and the optional learned LPIPS in
:mod:`girml.metrics.lpips`; all are re-exported here.
"""

from __future__ import annotations

from girml.metrics.fidelity import (
    block_shift,
    check_rgb_uint8,
    gaussian_window_1d,
    psnr,
    rgb_to_y,
    ssim,
)
from girml.metrics.lpips import LpipsMetric, load_lpips
from girml.metrics.niqe import NiqeModel, fit_niqe, niqe

__all__ = [
    "LpipsMetric",
    "NiqeModel",
    "block_shift",
    "check_rgb_uint8",
    "fit_niqe",
    "gaussian_window_1d",
    "load_lpips",
    "niqe",
    "psnr",
    "rgb_to_y",
    "ssim",
]
