"""Blur family: Gaussian (isotropic, anisotropic, generalized), motion and defocus blur.

Each op builds a normalised (k,k) kernel (k odd, at most 41) and applies it with the shared
:func:`girml.degradations.ops.apply_kernel` (reflect padding, depthwise ``conv2d``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from girml.degradations.ops import (
    MAX_KERNEL,
    apply_kernel,
    generator,
    kernel_grid,
    kernel_size,
    register_op,
)

SIGMA_DOMAIN = (0.1, 10.0)
# Motion trajectory: a random walk whose turn rate follows an AR(1) process (momentum).
_MOTION_MOMENTUM = 0.7
_MOTION_TURN_STD = 0.15  # radians per half-pixel step
_MOTION_POINTS_PER_PX = 2


def _normalised(kernel: Tensor) -> Tensor:
    return kernel / kernel.sum()


def _rotated_gaussian(sigma_x: float, sigma_y: float, theta: float) -> Tensor:
    size = kernel_size(3.0 * max(sigma_x, sigma_y))
    xx, yy = kernel_grid(size)
    cos, sin = math.cos(theta), math.sin(theta)
    u = cos * xx + sin * yy
    v = -sin * xx + cos * yy
    return _normalised(torch.exp(-0.5 * ((u / sigma_x) ** 2 + (v / sigma_y) ** 2)))


def gaussian_kernel(sigma: float) -> Tensor:
    """Isotropic Gaussian kernel.

    Args:
        sigma: standard deviation in pixels, > 0.

    Returns:
        (k,k) float64 kernel summing to 1, k = min(2*ceil(3*sigma)+1, 41).
    """
    if not sigma > 0:
        raise ValueError(f"gaussian_kernel: sigma must be > 0, got {sigma!r}")
    return _rotated_gaussian(sigma, sigma, 0.0)


@register_op("gaussian_blur", family="blur", domain={"sigma": SIGMA_DOMAIN})
def gaussian_blur(image: Tensor, sigma: float) -> Tensor:
    """Blur with an isotropic Gaussian.

    Args:
        image: (B,C,H,W) float in [0,1].
        sigma: standard deviation in pixels.

    Returns:
        (B,C,H,W) float in [0,1].
    """
    return apply_kernel(image, gaussian_kernel(sigma))


@register_op(
    "aniso_gaussian_blur",
    family="blur",
    domain={"sigma_x": SIGMA_DOMAIN, "sigma_y": SIGMA_DOMAIN, "theta": (-math.tau, math.tau)},
)
def aniso_gaussian_blur(
    image: Tensor, sigma_x: float, sigma_y: float, theta: float = 0.0
) -> Tensor:
    """Blur with an anisotropic Gaussian whose axes are rotated by ``theta``.

    Args:
        image: (B,C,H,W) float in [0,1].
        sigma_x: standard deviation along the rotated x axis, pixels.
        sigma_y: standard deviation along the rotated y axis, pixels.
        theta: rotation in radians.

    Returns:
        (B,C,H,W) float in [0,1].
    """
    return apply_kernel(image, _rotated_gaussian(sigma_x, sigma_y, theta))


@register_op(
    "generalized_gaussian_blur",
    family="blur",
    domain={"sigma": SIGMA_DOMAIN, "beta": (0.2, 8.0)},
)
def generalized_gaussian_blur(image: Tensor, sigma: float, beta: float) -> Tensor:
    """Blur with a generalized Gaussian ``exp(-0.5 * (r / sigma) ** beta)``.

    ``beta = 2`` is the Gaussian, ``beta < 2`` has heavier tails (the kernel is widened to hold
    them, up to 41 px), ``beta > 2`` gives plateau shapes.

    Args:
        image: (B,C,H,W) float in [0,1].
        sigma: scale in pixels.
        beta: shape exponent.

    Returns:
        (B,C,H,W) float in [0,1].
    """
    xx, yy = kernel_grid(kernel_size(3.0 * sigma * max(1.0, 2.0 / beta)))
    radius = torch.sqrt(xx**2 + yy**2)
    return apply_kernel(image, _normalised(torch.exp(-0.5 * (radius / sigma) ** beta)))


def _motion_kernel(length: float, seed: int) -> Tensor:
    """Rasterise a random trajectory of total ``length`` px into a normalised kernel."""
    gen = generator(seed)
    points = max(2, math.ceil(_MOTION_POINTS_PER_PX * length))
    start = float(torch.rand((), generator=gen, dtype=torch.float64)) * math.tau
    kicks = torch.randn(points - 1, generator=gen, dtype=torch.float64) * _MOTION_TURN_STD
    turns = torch.empty_like(kicks)
    rate = 0.0
    for i, kick in enumerate(kicks.tolist()):
        rate = _MOTION_MOMENTUM * rate + kick
        turns[i] = rate
    angles = start + torch.cumsum(turns, dim=0)
    steps = torch.stack([torch.cos(angles), torch.sin(angles)], dim=1) * (length / (points - 1))
    path = torch.cat([torch.zeros(1, 2, dtype=torch.float64), torch.cumsum(steps, dim=0)])
    path = path - path.mean(dim=0)  # centre of mass at the kernel centre: no image shift
    size = kernel_size(float(path.abs().max()) + 1.0)
    coords = (path + size // 2).clamp(0, size - 1)
    # Bilinear splatting of each trajectory point onto the four nearest kernel cells.
    x0, y0 = coords[:, 0].floor().long(), coords[:, 1].floor().long()
    fx, fy = coords[:, 0] - x0, coords[:, 1] - y0
    x1, y1 = (x0 + 1).clamp(max=size - 1), (y0 + 1).clamp(max=size - 1)
    kernel = torch.zeros(size, size, dtype=torch.float64)
    for ys, xs, weight in (
        (y0, x0, (1 - fx) * (1 - fy)),
        (y0, x1, fx * (1 - fy)),
        (y1, x0, (1 - fx) * fy),
        (y1, x1, fx * fy),
    ):
        kernel.index_put_((ys, xs), weight, accumulate=True)
    return _normalised(kernel)


@register_op("motion_blur", family="blur", domain={"length": (1.0, MAX_KERNEL - 1.0)})
def motion_blur(image: Tensor, length: float, *, seed: int) -> Tensor:
    """Blur along a random camera-shake trajectory (one kernel for the whole batch).

    Args:
        image: (B,C,H,W) float in [0,1].
        length: trajectory length in pixels.
        seed: trajectory realisation.

    Returns:
        (B,C,H,W) float in [0,1].
    """
    return apply_kernel(image, _motion_kernel(length, seed))


@register_op("defocus_blur", family="blur", domain={"radius": (0.5, (MAX_KERNEL - 1) / 2)})
def defocus_blur(image: Tensor, radius: float) -> Tensor:
    """Blur with an anti-aliased disk (pixel coverage falls linearly over the rim).

    Args:
        image: (B,C,H,W) float in [0,1].
        radius: disk radius in pixels.

    Returns:
        (B,C,H,W) float in [0,1].
    """
    xx, yy = kernel_grid(kernel_size(radius))
    coverage = (radius + 0.5 - torch.sqrt(xx**2 + yy**2)).clamp(0.0, 1.0)
    return apply_kernel(image, _normalised(coverage))
