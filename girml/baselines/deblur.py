"""Blur baselines: non-blind deconvolution with a fixed Gaussian point-spread function.

The PSF sigma is fixed (:data:`PSF_SIGMA` pixels) since the blur of a test image is unknown;
images are reflect-padded first so the circular FFT of the Wiener filter does not ring at
the borders.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter
from skimage.restoration import wiener as _wiener

from girml.baselines.core import from_unit, register_baseline, to_unit
from girml.metrics import gaussian_window_1d

PSF_SIGMA = 1.0
PSF_RADIUS = 4  # 9x9 PSF: +-4 sigma
WIENER_BALANCE = 0.01
RL_ITERATIONS = 10
_PAD = 16
_EPS = 1e-6


def gaussian_psf(sigma: float = PSF_SIGMA, radius: int = PSF_RADIUS) -> np.ndarray:
    """(2r+1, 2r+1) float64 normalised isotropic Gaussian point-spread function."""
    taps = gaussian_window_1d(2 * radius + 1, sigma)
    return np.outer(taps, taps)


def _blur(image: np.ndarray) -> np.ndarray:
    """Convolution of each channel with :func:`gaussian_psf` (same taps), reflected borders."""
    sigma = (PSF_SIGMA, PSF_SIGMA, 0.0)
    return gaussian_filter(image, sigma, mode="reflect", truncate=PSF_RADIUS / PSF_SIGMA)


@register_baseline(
    "wiener",
    family="blur",
    description=f"Wiener-Hunt deconvolution, Gaussian PSF sigma {PSF_SIGMA}, balance "
    f"{WIENER_BALANCE}",
)
def wiener(lq: np.ndarray) -> np.ndarray:
    """Wiener-Hunt deconvolution (Laplacian prior) of each channel with a Gaussian PSF."""
    x = np.pad(to_unit(lq), ((_PAD, _PAD), (_PAD, _PAD), (0, 0)), mode="reflect")
    psf = gaussian_psf()
    out = np.stack([_wiener(x[..., c], psf, WIENER_BALANCE, clip=False) for c in range(3)], axis=-1)
    return from_unit(out[_PAD:-_PAD, _PAD:-_PAD])


@register_baseline(
    "richardson_lucy",
    family="blur",
    description=f"Richardson-Lucy deconvolution, {RL_ITERATIONS} iterations, Gaussian PSF "
    f"sigma {PSF_SIGMA}",
)
def richardson_lucy(lq: np.ndarray) -> np.ndarray:
    """Richardson-Lucy deconvolution started from the observation.

    The Gaussian PSF is symmetric and separable, so both convolutions of an iteration are one
    reflect-bordered Gaussian filter each.
    """
    observed = to_unit(lq) + _EPS
    estimate = observed.copy()
    for _ in range(RL_ITERATIONS):
        ratio = observed / (_blur(estimate) + _EPS)
        estimate = estimate * _blur(ratio)
    return from_unit(estimate)
