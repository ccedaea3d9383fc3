"""What the baseline tests share: degrading a crop and a baseline's PSNR gain on it."""

from __future__ import annotations

import numpy as np

from girml.baselines import BASELINES
from girml.core.imageio import to_tensor, to_uint8
from girml.degradations import OPS
from girml.metrics import psnr


def degrade(image: np.ndarray, op: str, *args: object, **kwargs: object) -> np.ndarray:
    """``image`` (H, W, 3) uint8 through degradation op ``op``, back to uint8."""
    return to_uint8(OPS.get(op)(to_tensor(image), *args, **kwargs))


def gain(name: str, lq: np.ndarray, gt: np.ndarray) -> float:
    """PSNR gain (dB) of baseline ``name`` on ``lq`` against ``gt``."""
    return psnr(BASELINES.get(name)(lq), gt) - psnr(lq, gt)
