"""NIQE, the Natural Image Quality Evaluator (Mittal, Soundararajan and Bovik, 2013).

A no-reference score: the distance between a multivariate Gaussian (MVG) fitted to natural-scene
statistics of an image's patches and an MVG fitted to pristine images; lower is better. The
pristine model is fitted here, by :func:`fit_niqe`, on the project's own clean images: nothing is
downloaded, so scores are comparable only between images scored with the same model.

The algorithm follows the reference MATLAB code (and BasicSR's port, ``basicsr/metrics/niqe.py``):
the rounded BT.601 luma of the image is normalised into MSCN coefficients with a 7x7 Gaussian
window (sigma 7/6, replicate borders); every non-overlapping ``patch_size`` square yields 18
features (AGGD fits of the coefficients and of their products with 4 neighbours) at the full and
at half resolution, 36 in all; fitting keeps only the sharp patches (mean local deviation above
``sharpness_threshold`` times the image's sharpest patch); the score is
``sqrt((mu1 - mu2)^T pinv((cov1 + cov2) / 2) (mu1 - mu2))``.

Two documented deviations: the half-resolution image comes from ``torch``'s antialiased bicubic
resize (the same Keys kernel as MATLAB's ``imresize``, but with renormalised instead of
mirrored taps at the borders); and an image holding a single patch, whose covariance is
undefined, is scored with the pristine covariance alone.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import correlate1d
from scipy.special import gamma as gamma_fn

from girml.core.imageio import atomic_path
from girml.metrics.fidelity import check_rgb_uint8, gaussian_window_1d, rgb_to_y

N_FEATURES = 36
MSCN_WINDOW = 7
MSCN_SIGMA = 7.0 / 6.0
MIN_PATCH = 8
# Neighbour offsets of the paired products: horizontal, vertical, main and anti-diagonal.
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))


@dataclass(frozen=True)
class NiqeModel:
    """Pristine multivariate Gaussian of NIQE features.

    Attributes:
        mu: (36,) float64 feature mean.
        cov: (36, 36) float64 feature covariance.
        patch_size: side of the square patches the model was fitted with; :func:`niqe` uses it.
    """

    mu: np.ndarray
    cov: np.ndarray
    patch_size: int

    def __post_init__(self) -> None:
        if self.mu.shape != (N_FEATURES,) or self.cov.shape != (N_FEATURES, N_FEATURES):
            raise ValueError(
                f"NiqeModel needs mu ({N_FEATURES},) and cov ({N_FEATURES}, {N_FEATURES}), "
                f"got {self.mu.shape} and {self.cov.shape}"
            )
        _check_patch_size(self.patch_size)

    def save(self, path: str | os.PathLike) -> None:
        """Write the model atomically as ``.npz`` (keys ``mu``, ``cov``, ``patch_size``)."""
        with atomic_path(path) as tmp, tmp.open("wb") as fh:
            np.savez(fh, mu=self.mu, cov=self.cov, patch_size=np.int64(self.patch_size))

    @classmethod
    def load(cls, path: str | os.PathLike) -> NiqeModel:
        """Read a model written by :meth:`save`.

        Raises:
            FileNotFoundError: no file at ``path``.
            ValueError: the file is not such a model (message names the path).
        """
        try:
            with np.load(path, allow_pickle=False) as data:
                mu, cov, patch_size = data["mu"], data["cov"], int(data["patch_size"])
        except FileNotFoundError:
            raise FileNotFoundError(f"NIQE model not found: {path}") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not a NIQE model .npz ({exc})") from None
        try:
            return cls(mu=mu.astype(np.float64), cov=cov.astype(np.float64), patch_size=patch_size)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None


def _check_patch_size(patch_size: int) -> None:
    if patch_size < MIN_PATCH or patch_size % 2:
        raise ValueError(f"patch_size must be even and >= {MIN_PATCH}, got {patch_size}")


@lru_cache(maxsize=1)
def _aggd_table() -> tuple[np.ndarray, np.ndarray]:
    """Candidate shapes 0.2..10 (step 0.001) and their ratio ``G(2/a)^2 / (G(1/a) G(3/a))``."""
    shapes = np.arange(0.2, 10.001, 0.001)
    ratios = gamma_fn(2 / shapes) ** 2 / (gamma_fn(1 / shapes) * gamma_fn(3 / shapes))
    return shapes, ratios


def _aggd(values: np.ndarray) -> tuple[float, float, float]:
    """Moment-matching fit of an asymmetric generalised Gaussian: (shape, left and right scale).

    All three are NaN when ``values`` lacks negative or positive entries (a flat patch).
    """
    left, right = values[values < 0], values[values > 0]
    if left.size == 0 or right.size == 0:
        return math.nan, math.nan, math.nan
    left_std, right_std = np.sqrt(np.mean(left**2)), np.sqrt(np.mean(right**2))
    gamma_hat = left_std / right_std
    r_hat = np.mean(np.abs(values)) ** 2 / np.mean(values**2)
    r_norm = r_hat * (gamma_hat**3 + 1) * (gamma_hat + 1) / (gamma_hat**2 + 1) ** 2
    shapes, ratios = _aggd_table()
    alpha = shapes[np.argmin((ratios - r_norm) ** 2)]
    spread = np.sqrt(gamma_fn(1 / alpha) / gamma_fn(3 / alpha))
    return float(alpha), float(left_std * spread), float(right_std * spread)


def _patch_features(block: np.ndarray) -> list[float]:
    """The 18 features of one MSCN patch (the reference ``computefeature``)."""
    alpha, beta_l, beta_r = _aggd(block.ravel())
    feats = [alpha, (beta_l + beta_r) / 2]
    for shift in _SHIFTS:
        product = block * np.roll(block, shift, axis=(0, 1))
        alpha, beta_l, beta_r = _aggd(product.ravel())
        mean = (beta_r - beta_l) * gamma_fn(2 / alpha) / gamma_fn(1 / alpha)
        feats += [alpha, mean, beta_l, beta_r]
    return feats


def _mscn(gray: np.ndarray, taps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean-subtracted contrast-normalised coefficients and the local deviation map."""

    def blur(x: np.ndarray) -> np.ndarray:
        return correlate1d(
            correlate1d(x, taps, axis=0, mode="nearest"), taps, axis=1, mode="nearest"
        )

    mu = blur(gray)
    sigma = np.sqrt(np.abs(blur(gray * gray) - mu * mu))
    return (gray - mu) / (sigma + 1.0), sigma


def _half(gray: np.ndarray) -> np.ndarray:
    """Antialiased bicubic downscale by 2 (even sides in, exact halves out)."""
    x = torch.from_numpy(gray)[None, None]
    out = F.interpolate(x, scale_factor=0.5, mode="bicubic", antialias=True, align_corners=False)
    return out[0, 0].numpy()


def _features(image: np.ndarray, patch_size: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Per patch NIQE features and sharpness of an RGB uint8 image.

    Returns:
        (N, 36) float64 features (NaN rows for flat patches) and (N,) mean local deviation at
        full resolution, patches in row-major order.
    """
    check_rgb_uint8(name, image)
    height, width = image.shape[:2]
    rows, cols = height // patch_size, width // patch_size
    if rows == 0 or cols == 0:
        raise ValueError(
            f"{name} is {height}x{width}, smaller than one {patch_size}x{patch_size} NIQE patch"
        )
    gray = rgb_to_y(image[: rows * patch_size, : cols * patch_size]).round()
    taps = gaussian_window_1d(MSCN_WINDOW, MSCN_SIGMA)
    per_scale, sharpness = [], np.empty(0)
    for scale in (1, 2):
        mscn, sigma = _mscn(gray, taps)
        side = patch_size // scale
        blocks = [
            mscn[r * side : (r + 1) * side, c * side : (c + 1) * side]
            for r in range(rows)
            for c in range(cols)
        ]
        per_scale.append(np.array([_patch_features(b) for b in blocks]))
        if scale == 1:
            sharpness = sigma.reshape(rows, side, cols, side).mean(axis=(1, 3)).ravel()
            gray = _half(gray)
    return np.concatenate(per_scale, axis=1), sharpness


def _valid_rows(feats: np.ndarray) -> np.ndarray:
    return feats[~np.isnan(feats).any(axis=1)]


def fit_niqe(
    images: Iterable[np.ndarray], patch_size: int = 96, sharpness_threshold: float = 0.75
) -> NiqeModel:
    """Fit the pristine NIQE model on clean images.

    Args:
        images: clean photos, each (H, W, 3) uint8 with both sides >= ``patch_size``.
        patch_size: side of the non-overlapping square patches, even, >= 8.
        sharpness_threshold: a patch is kept when its mean local deviation exceeds this fraction
            of the sharpest patch of the same image, in [0, 1).

    Returns:
        The fitted :class:`NiqeModel`.

    Raises:
        ValueError: bad arguments, an image smaller than one patch, or fewer than 2 usable
            patches in all.
    """
    _check_patch_size(patch_size)
    if not 0 <= sharpness_threshold < 1:
        raise ValueError(f"sharpness_threshold must be in [0, 1), got {sharpness_threshold}")
    kept = []
    for i, image in enumerate(images):
        feats, sharpness = _features(image, patch_size, f"image {i}")
        kept.append(feats[sharpness > sharpness_threshold * sharpness.max()])
    pristine = _valid_rows(np.concatenate(kept)) if kept else np.empty((0, N_FEATURES))
    if len(pristine) < 2:
        raise ValueError(
            f"fit_niqe needs at least 2 sharp, non-flat patches, got {len(pristine)}: "
            "give more (or larger, textured) images"
        )
    return NiqeModel(
        mu=pristine.mean(axis=0), cov=np.cov(pristine, rowvar=False), patch_size=patch_size
    )


def niqe(image: np.ndarray, model: NiqeModel) -> float:
    """NIQE score of one image against a pristine model; lower is more natural.

    Args:
        image: (H, W, 3) uint8, both sides >= ``model.patch_size`` (the remainder of the
            patch grid is ignored).
        model: pristine model from :func:`fit_niqe` or :meth:`NiqeModel.load`.

    Returns:
        The non-negative distance between the image's and the pristine feature distributions.

    Raises:
        ValueError: wrong type/shape, an image smaller than one patch, or only flat patches.
    """
    feats = _valid_rows(_features(image, model.patch_size, "niqe image")[0])
    if len(feats) == 0:
        raise ValueError("niqe image has only flat patches: NIQE is undefined")
    cov = np.cov(feats, rowvar=False) if len(feats) > 1 else np.zeros_like(model.cov)
    diff = model.mu - feats.mean(axis=0)
    return float(np.sqrt(max(diff @ np.linalg.pinv((model.cov + cov) / 2) @ diff, 0.0)))
