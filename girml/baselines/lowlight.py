"""Low-light baselines: global adaptive gamma and local contrast equalisation (CLAHE)."""

from __future__ import annotations

import math

import numpy as np
from skimage.exposure import equalize_adapthist

from girml.baselines.core import from_unit, luma, register_baseline, to_unit

TARGET_MEAN = 0.5
CLAHE_CLIP = 0.01
_MEAN_RANGE = (1e-3, 1.0 - 1e-3)


@register_baseline(
    "gamma",
    family="lowlight",
    description="global gamma chosen so that the mean luma becomes 0.5",
)
def gamma(lq: np.ndarray) -> np.ndarray:
    """Apply ``x ** g`` per channel with ``g = log(0.5) / log(mean luma)``."""
    x = to_unit(lq)
    mean = float(np.clip(luma(x).mean(), *_MEAN_RANGE))
    return from_unit(x ** (math.log(TARGET_MEAN) / math.log(mean)))


@register_baseline(
    "clahe",
    family="lowlight",
    description=f"CLAHE on the BT.601 luma (clip limit {CLAHE_CLIP}, 8x8 tiles), chroma kept",
)
def clahe(lq: np.ndarray) -> np.ndarray:
    """Contrast-limited adaptive histogram equalisation of the luma.

    Every channel moves by the change of luma, which leaves the YCbCr chroma unchanged.
    """
    x = to_unit(lq)
    y = luma(x)
    return from_unit(x + (equalize_adapthist(y, clip_limit=CLAHE_CLIP) - y)[..., None])
