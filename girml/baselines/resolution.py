"""Resolution baseline for same-size inputs: an unsharp mask, the classical SR post-filter.

The benchmark's low-resolution family is already re-sampled to the target size (down, then up
with bilinear/bicubic), so bicubic interpolation has nothing left to do; what classical
pipelines add after it is sharpening, which restores some of the attenuated high frequencies.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from girml.baselines.core import from_unit, register_baseline, to_unit

UNSHARP_SIGMA = 1.0
UNSHARP_AMOUNT = 0.5


@register_baseline(
    "bicubic_sharpen",
    family="resize",
    description=f"unsharp mask (Gaussian sigma {UNSHARP_SIGMA}, amount {UNSHARP_AMOUNT}) "
    "on the already-upsampled input",
)
def bicubic_sharpen(lq: np.ndarray) -> np.ndarray:
    """``x + amount * (x - gaussian(x))`` per channel, clipped."""
    x = to_unit(lq)
    blurred = gaussian_filter(x, (UNSHARP_SIGMA, UNSHARP_SIGMA, 0.0), mode="reflect")
    return from_unit(x + UNSHARP_AMOUNT * (x - blurred))
