"""Noise baselines: non-local means, and BM3D when the optional ``bm3d`` package is installed.

``bm3d`` (Tampere University, binary library, non-commercial licence) costs seconds per call
whatever the image size, so it is registered only when it imports.
"""

from __future__ import annotations

import warnings
from types import ModuleType

import numpy as np
from skimage.restoration import denoise_nl_means, estimate_sigma

from girml.baselines.core import from_unit, register_baseline, to_unit

NLM_PATCH = 5
NLM_DISTANCE = 4
NLM_H = 0.8  # filtering strength, in units of the estimated noise sigma
_MIN_SIGMA = 1e-3  # BM3D needs a positive noise level, even on a clean input


def noise_sigma(image: np.ndarray) -> float:
    """Gaussian noise standard deviation of a [0, 1] (H, W, 3) image, averaged over channels.

    Uses the wavelet-domain median estimator of Donoho and Johnstone
    (``skimage.restoration.estimate_sigma``); 0 for a channel without any fine detail.
    """
    with warnings.catch_warnings():
        # A channel whose finest wavelet coefficients are all zero (a flat channel) gets the
        # mean of an empty array: NaN plus a RuntimeWarning.
        warnings.simplefilter("ignore", RuntimeWarning)
        sigmas = estimate_sigma(image, channel_axis=-1)
    return float(np.mean(np.nan_to_num(sigmas, nan=0.0)))


@register_baseline(
    "nlm",
    family="noise",
    description="non-local means (fast mode, 5x5 patches, 9x9 search, h = 0.8 sigma_est)",
)
def nlm(lq: np.ndarray) -> np.ndarray:
    """Non-local means denoising with the noise level estimated from the image."""
    x = to_unit(lq)
    sigma = noise_sigma(x)
    out = denoise_nl_means(
        x,
        patch_size=NLM_PATCH,
        patch_distance=NLM_DISTANCE,
        h=NLM_H * sigma,
        sigma=sigma,
        fast_mode=True,
        channel_axis=-1,
    )
    return from_unit(out)


_bm3d: ModuleType | None
try:
    import bm3d as _bm3d
except (ImportError, OSError):  # not installed, or its bundled library does not load here
    _bm3d = None

if _bm3d is not None:

    @register_baseline(
        "bm3d",
        family="noise",
        description="BM3D (colour, opponent space, 'np' profile), sigma estimated from the "
        "image; slow (seconds per image)",
    )
    def bm3d(lq: np.ndarray) -> np.ndarray:
        """BM3D denoising (Dabov et al. 2007) with the noise level estimated from the image."""
        x = to_unit(lq)
        return from_unit(_bm3d.bm3d_rgb(x, sigma_psd=max(noise_sigma(x), _MIN_SIGMA)))
