"""Local attribution maps (LAM): which input pixels a window of the output depends on.

Gu and Dong, "Interpreting Super-Resolution Networks with Local Attribution Maps", CVPR 2021,
arXiv 2011.11036. LAM is integrated gradients along a progressive-blur path: the baseline is the
input blurred with a Gaussian of ``sigma_max``, and the path sharpens it until the blur is gone
(sigma goes linearly from ``sigma_max`` to 0). The objective is the sum of the model's output
over one ``window`` x ``window`` patch. The diffusion index ``DI = (1 - Gini) * 100`` of the
channel-summed absolute attribution says how spread out the used input region is (0: a few
pixels, 100: evenly over the whole image).

The path integral is a midpoint Riemann sum: for each of ``steps`` segments between consecutive
path points, the gradient at the segment's midpoint (in sigma) times the difference of its end
points. For a smooth model its error falls as ``1 / steps**2`` (LAM's reference implementation
uses the right end point instead, error ``1 / steps``); completeness, ``sum(attribution) ==
F(input) - F(baseline)``, holds up to that error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from girml.core.inference import model_device
from girml.degradations.ops import apply_kernel, kernel_grid, kernel_size
from girml.metrics import rgb_to_y

LAM_SIGMA = 4.0  # pixels: blur of the path's baseline; strong enough to remove 128px textures
LAM_BATCH = 8  # path points per forward/backward pass


@dataclass(frozen=True)
class Attribution:
    """The result of :func:`lam`.

    Attributes:
        map: (3,H,W) float64 attribution of every input value.
        window: ``(y, x, size)`` of the output window.
        objective: F(input), the window's summed output.
        objective_baseline: F(baseline), the same for the blurred baseline.
    """

    map: np.ndarray
    window: tuple[int, int, int]
    objective: float
    objective_baseline: float

    @property
    def completeness_error(self) -> float:
        """``sum(map) - (objective - objective_baseline)``: the path integral's error."""
        return float(self.map.sum()) - (self.objective - self.objective_baseline)


def path_kernel(sigma: float, size: int) -> torch.Tensor:
    """Normalised (size,size) Gaussian kernel; sigma 0 is the identity (a centred delta).

    The side is fixed along the whole path so the path is continuous in sigma.
    """
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    if size < 1 or size % 2 == 0:
        raise ValueError(f"size must be odd and >= 1, got {size}")
    xx, yy = kernel_grid(size)
    if sigma == 0:
        return ((xx == 0) & (yy == 0)).double()
    kernel = torch.exp(-0.5 * (xx**2 + yy**2) / sigma**2)
    return kernel / kernel.sum()


def blur_path(image: torch.Tensor, sigmas: np.ndarray) -> torch.Tensor:
    """The input blurred with each of ``sigmas`` (reflect padding, one fixed kernel side).

    Args:
        image: (1,C,H,W) float32 in [0,1].
        sigmas: non-negative blur sigmas in pixels.

    Returns:
        (len(sigmas),C,H,W) float32.
    """
    if image.ndim != 4 or image.shape[0] != 1:
        raise ValueError(f"image must be (1,C,H,W), got shape {tuple(image.shape)}")
    size = kernel_size(3.0 * float(np.max(sigmas)))
    return torch.cat([apply_kernel(image, path_kernel(float(s), size)) for s in sigmas])


def _window_sum(
    model: nn.Module, batch: torch.Tensor, window: tuple[int, int, int]
) -> torch.Tensor:
    y, x, size = window
    return model(batch)[:, :, y : y + size, x : x + size].sum()


def lam(
    model: nn.Module,
    image: torch.Tensor,
    window: tuple[int, int, int],
    steps: int,
    sigma_max: float = LAM_SIGMA,
    batch_size: int = LAM_BATCH,
) -> Attribution:
    """Local attribution map of one output window by integrated gradients along a blur path.

    The model must treat the items of a batch independently (true in eval mode for every
    architecture here), since the gradients of a whole batch are taken at once.

    Args:
        model: restoration network in eval mode (parameters are not updated).
        image: (1,3,H,W) float32 in [0,1], the degraded input (the path is built on the CPU
            and run on the model's device).
        window: ``(y, x, size)``, the output patch ``[y:y+size, x:x+size]`` (all channels).
        steps: Riemann segments along the path, >= 1.
        sigma_max: blur of the baseline in pixels, > 0.
        batch_size: path points per forward/backward pass, >= 1.

    Returns:
        The :class:`Attribution`; ``map.sum()`` approximates ``objective - objective_baseline``.
    """
    if image.ndim != 4 or image.shape[:2] != (1, 3):
        raise ValueError(f"image must be (1,3,H,W), got shape {tuple(image.shape)}")
    y, x, size = window
    height, width = image.shape[-2:]
    if size < 1 or y < 0 or x < 0 or y + size > height or x + size > width:
        raise ValueError(f"window {window} does not fit in a {height}x{width} image")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if not sigma_max > 0:
        raise ValueError(f"sigma_max must be > 0, got {sigma_max}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    # 2*steps + 1 sigmas: even indices are the segment ends, odd ones their midpoints.
    device = model_device(model)
    path = blur_path(image.float().cpu(), np.linspace(sigma_max, 0.0, 2 * steps + 1)).to(device)
    ends, mids = path[0::2], path[1::2]
    deltas = ends[1:] - ends[:-1]
    total = torch.zeros(image.shape[1:], dtype=torch.float64, device=device)
    for first in range(0, steps, batch_size):
        batch = mids[first : first + batch_size].clone().requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(_window_sum(model, batch, window), batch)
        total += (grad * deltas[first : first + batch_size]).double().sum(dim=0)
    with torch.no_grad():
        objective = float(_window_sum(model, ends[-1:], window))
        baseline = float(_window_sum(model, ends[:1], window))
    return Attribution(total.cpu().numpy(), (y, x, size), objective, baseline)


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative values: 0 when all are equal, -> 1 when one holds all.

    ``G = sum_i (2i - n - 1) v_(i) / (n sum v)`` over the sorted values (i from 1); an all-zero
    array counts as perfectly even (0).
    """
    v = np.sort(np.asarray(values, dtype=np.float64).ravel())
    if v.size == 0:
        raise ValueError("gini needs at least one value")
    if v[0] < 0:
        raise ValueError(f"gini needs non-negative values, got minimum {v[0]}")
    total = v.sum()
    if total == 0:
        return 0.0
    index = np.arange(1, v.size + 1)
    return float(np.sum((2 * index - v.size - 1) * v) / (v.size * total))


def diffusion_index(attribution: np.ndarray) -> float:
    """LAM's diffusion index ``(1 - Gini(|attribution| summed over channels)) * 100``.

    Args:
        attribution: (C,H,W) attribution map.

    Returns:
        DI in [0, 100].
    """
    if attribution.ndim != 3:
        raise ValueError(f"attribution must be (C,H,W), got shape {attribution.shape}")
    return (1.0 - gini(np.abs(attribution).sum(axis=0))) * 100.0


def textured_window(image: np.ndarray, size: int) -> tuple[int, int, int]:
    """The ``size`` x ``size`` window with the most luma variance (stride ``size // 2``).

    LAM is most telling where there is structure to restore, so the window is put on the
    busiest patch of the ground truth.

    Args:
        image: (H,W,3) uint8.
        size: window side, 1 <= size <= min(H, W).

    Returns:
        ``(y, x, size)``.
    """
    height, width = image.shape[:2]
    if not 1 <= size <= min(height, width):
        raise ValueError(f"window size must be in [1, {min(height, width)}], got {size}")
    luma = rgb_to_y(image)
    stride = max(1, size // 2)
    starts_y = sorted({*range(0, height - size + 1, stride), height - size})
    starts_x = sorted({*range(0, width - size + 1, stride), width - size})
    # ties go to the top-left window: the maximum of (variance, -y, -x)
    _, neg_y, neg_x = max(
        (float(luma[y : y + size, x : x + size].var()), -y, -x) for y in starts_y for x in starts_x
    )
    return (-neg_y, -neg_x, size)
