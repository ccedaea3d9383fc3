"""Core of the classical baselines: the ``BASELINES`` registry and the helpers they share.

A baseline is a pure function ``fn(lq) -> restored`` on (H, W, 3) uint8 images of any size,
returning the same shape and dtype, with fixed documented settings: whatever it needs to know
about the degradation (a noise level, the airlight) it estimates from the image itself.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
from scipy.ndimage import uniform_filter

from girml.core.imageio import BT601_LUMA
from girml.core.registry import Registry
from girml.metrics import check_rgb_uint8

Baseline = Callable[[np.ndarray], np.ndarray]

BASELINES: Registry[Baseline] = Registry("baseline")

LUMA = np.array(BT601_LUMA)


def register_baseline(
    name: str, *, family: str, description: str
) -> Callable[[Baseline], Baseline]:
    """Register a baseline in :data:`BASELINES` and enforce its contract.

    The returned wrapper checks that the input is (H, W, 3) uint8 and that the function returns
    an array of the same shape and dtype. Registry metadata: ``family`` (the degradation family
    it targets, as in ``params.yaml``, or ``none``) and ``description`` (one line).

    Args:
        name: registry name.
        family: degradation family the method specialises in.
        description: one-line summary, shown in reports.
    """

    def deco(fn: Baseline) -> Baseline:
        @functools.wraps(fn)
        def wrapper(lq: np.ndarray) -> np.ndarray:
            check_rgb_uint8(f"baseline {name}: input", lq)
            out = fn(lq)
            if out.shape != lq.shape or out.dtype != np.uint8:
                raise RuntimeError(
                    f"baseline {name} returned {out.dtype} {out.shape} for uint8 {lq.shape}"
                )
            return out

        BASELINES.register(name, family=family, description=description)(wrapper)
        return wrapper

    return deco


def to_unit(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 in [0, 255] -> float64 in [0, 1]."""
    return image.astype(np.float64) / 255.0


def from_unit(image: np.ndarray) -> np.ndarray:
    """Float image in [0, 1] (values outside are clipped) -> uint8, rounded."""
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def luma(image: np.ndarray) -> np.ndarray:
    """BT.601 luma of an (H, W, 3) float image, (H, W) in the same range."""
    return image @ LUMA


def box_mean(image: np.ndarray, radius: int) -> np.ndarray:
    """Mean over the (2r+1)^2 window around each pixel (reflected borders), per channel."""
    size = (2 * radius + 1, 2 * radius + 1) + (1,) * (image.ndim - 2)
    return uniform_filter(image, size=size, mode="reflect")


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Edge-preserving guided filter (He, Sun and Tang 2010) with a gray guide.

    Args:
        guide: (H, W) float guide image, in [0, 1].
        src: (H, W) or (H, W, C) float image to filter.
        radius: window radius in pixels, >= 1.
        eps: regularisation, > 0; edges with variance well above ``eps`` are kept.

    Returns:
        Filtered ``src``, same shape, float64.
    """
    if radius < 1:
        raise ValueError(f"radius must be >= 1, got {radius}")
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    g = guide if src.ndim == 2 else guide[..., None]
    mean_g, mean_s = box_mean(g, radius), box_mean(src, radius)
    cov = box_mean(g * src, radius) - mean_g * mean_s
    var = box_mean(g * g, radius) - mean_g * mean_g
    a = cov / (var + eps)
    b = mean_s - a * mean_g
    return box_mean(a, radius) * g + box_mean(b, radius)


@register_baseline("identity", family="none", description="the degraded input itself")
def identity(lq: np.ndarray) -> np.ndarray:
    """The input, unchanged (a copy): the floor every method must beat."""
    return lq.copy()
