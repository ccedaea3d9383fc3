"""Haze baseline: the dark channel prior (He, Sun and Tang 2009) with guided-filter refinement."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import minimum_filter

from girml.baselines.core import from_unit, guided_filter, luma, register_baseline, to_unit

OMEGA = 0.95  # keep a little haze for depth perception
T0 = 0.1  # lower bound on the transmission
PATCH = 15
BRIGHTEST = 0.001  # fraction of the haziest pixels (dark channel) used to estimate the airlight
GUIDE_RADIUS = 20
GUIDE_EPS = 1e-3


def dark_channel_map(image: np.ndarray, patch: int = PATCH) -> np.ndarray:
    """Minimum over the channels and a ``patch``-wide square window: (H, W, 3) -> (H, W)."""
    return minimum_filter(image.min(axis=2), size=patch, mode="nearest")


def airlight(image: np.ndarray, dark: np.ndarray) -> np.ndarray:
    """(3,) atmospheric light: mean colour of the pixels with the brightest dark channel."""
    count = max(1, round(BRIGHTEST * dark.size))
    idx = np.argsort(dark, axis=None, kind="stable")[-count:]
    return image.reshape(-1, 3)[idx].mean(axis=0)


@register_baseline(
    "dark_channel",
    family="haze",
    description=f"dark channel prior dehazing (patch {PATCH}, omega {OMEGA}, t0 {T0}) with a "
    "guided-filter transmission",
)
def dark_channel(lq: np.ndarray) -> np.ndarray:
    """Invert ``I = J t + A (1 - t)`` with ``t`` from the dark channel of ``I / A``."""
    x = to_unit(lq)
    a = np.maximum(airlight(x, dark_channel_map(x)), 1e-3)
    rough = 1.0 - OMEGA * dark_channel_map(x / a)
    t = guided_filter(luma(x), rough, GUIDE_RADIUS, GUIDE_EPS)
    return from_unit((x - a) / np.maximum(t, T0)[..., None] + a)
