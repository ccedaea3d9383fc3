"""Restoration losses: pixel L1, Charbonnier, L2 or PSNR, optionally plus an L1 on the spectrum."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from girml.core.registry import Registry

LossFn = Callable[[Tensor, Tensor], Tensor]
LOSSES: Registry[LossFn] = Registry("loss")
CHARBONNIER_EPS = 1e-3
# caps a perfect image at 50 dB: an identity sample (train.clean_prob) whose output is
# already near-perfect must not outweigh the whole batch (the gradient scales as 1/MSE)
PSNR_EPS = 1e-5


def _check_pair(pred: Tensor, target: Tensor) -> None:
    if pred.ndim != 4:
        raise ValueError(f"pred must be (B,C,H,W), got shape {tuple(pred.shape)}")
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}"
        )


@LOSSES.register("l1")
def l1_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error.

    Args:
        pred: (B,C,H,W) float.
        target: same shape.

    Returns:
        Scalar tensor.
    """
    _check_pair(pred, target)
    return (pred - target).abs().mean()


@LOSSES.register("charbonnier")
def charbonnier_loss(pred: Tensor, target: Tensor, eps: float = CHARBONNIER_EPS) -> Tensor:
    """Charbonnier loss ``mean(sqrt((pred - target)^2 + eps^2))``, a smooth L1.

    Args:
        pred: (B,C,H,W) float.
        target: same shape.
        eps: smoothing, > 0 (values in [0,1] images: 1e-3 as in MPRNet/Restormer).

    Returns:
        Scalar tensor.
    """
    _check_pair(pred, target)
    if eps <= 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    return torch.sqrt((pred - target).square() + eps * eps).mean()


@LOSSES.register("l2")
def l2_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean squared error; arguments and result as for :func:`l1_loss`."""
    _check_pair(pred, target)
    return (pred - target).square().mean()


@LOSSES.register("psnr")
def psnr_loss(pred: Tensor, target: Tensor, eps: float = PSNR_EPS) -> Tensor:
    """Minus the batch's mean per-image PSNR in dB, ``mean_i 10 log10(MSE_i + eps)`` (HINet).

    Each image's gradient is its MSE gradient divided by its MSE, so a mildly degraded image
    (high PSNR) weighs as much as a badly degraded one: the objective is the mean PSNR that
    validation and evaluation report, and a unified model cannot buy large gains on low-light
    or hazy images with small losses on blurred or compressed ones.

    Args:
        pred: (B,C,H,W) float in [0,1].
        target: same shape.
        eps: added to each MSE, > 0.

    Returns:
        Scalar tensor (negative: -30 means a mean PSNR of 30 dB).
    """
    _check_pair(pred, target)
    if eps <= 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    mse = (pred.float() - target.float()).square().flatten(1).mean(1)
    return (10.0 / math.log(10.0)) * torch.log(mse + eps).mean()


def fft_l1_loss(pred: Tensor, target: Tensor) -> Tensor:
    """L1 between the real 2-D FFTs (real and imaginary parts), as in MIMO-UNet.

    Arguments and result as for :func:`l1_loss`. Computed in float32, since half-precision FFTs
    need power-of-two sizes.
    """
    _check_pair(pred, target)
    diff = torch.fft.rfft2(pred.float()) - torch.fft.rfft2(target.float())
    return torch.view_as_real(diff).abs().mean()


def restoration_loss(
    pred: Tensor,
    target: Tensor,
    kind: str,
    freq_weight: float = 0.0,
    psnr_eps: float = PSNR_EPS,
) -> Tensor:
    """The training objective: ``LOSSES[kind](pred, target) + freq_weight * fft_l1``.

    Args:
        pred: (B,C,H,W) float network output.
        target: same shape, the clean images in [0,1].
        kind: a name in :data:`LOSSES` (``l1``, ``charbonnier``, ``l2``, ``psnr``).
        freq_weight: weight of :func:`fft_l1_loss`, >= 0 (0 skips it).
        psnr_eps: the ``psnr`` loss's MSE floor (``train.psnr_eps``): an image weighs
            ``1 / (MSE + psnr_eps)``, so a larger floor shifts weight from nearly perfect
            outputs to badly degraded ones.

    Returns:
        Scalar tensor.
    """
    if freq_weight < 0:
        raise ValueError(f"freq_weight must be >= 0, got {freq_weight}")
    if kind == "psnr":
        loss = psnr_loss(pred, target, eps=psnr_eps)
    else:
        loss = LOSSES.get(kind)(pred, target)
    if freq_weight > 0:
        loss = loss + freq_weight * fft_l1_loss(pred, target)
    return loss
