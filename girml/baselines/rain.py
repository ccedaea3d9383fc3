"""Rain baseline: a selective horizontal median that removes thin bright streaks.

Rain streaks are near-vertical, thin and only brighten the image (screen blending). A median
across a horizontal window of :data:`MEDIAN_WIDTH` pixels therefore sees through any streak
narrower than half the window; a pixel brighter than that median by more than :data:`MARGIN` in
every channel is taken as rain and replaced by it, everything else is left untouched, which
spares most texture (a square median blurs it). Streaks tilted beyond about 60 degrees from
vertical are wider than the window along a row and stay.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import median_filter

from girml.baselines.core import register_baseline

MEDIAN_WIDTH = 9
MARGIN = 8  # 8-bit levels


@register_baseline(
    "median",
    family="rain",
    description=f"selective 1x{MEDIAN_WIDTH} horizontal median: replaces pixels brighter than "
    f"it by > {MARGIN} levels in every channel",
)
def median(lq: np.ndarray) -> np.ndarray:
    """Replace the pixels that stand out brightly from their row-wise median by that median."""
    med = median_filter(lq, size=(1, MEDIAN_WIDTH, 1), mode="reflect")
    streak = (lq.astype(np.int16) - med > MARGIN).all(axis=2, keepdims=True)
    return np.where(streak, med, lq)
