"""Restoration losses (girml.training.losses): values, the registry, and argument errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from girml.metrics import psnr
from girml.training.losses import (
    LOSSES,
    charbonnier_loss,
    fft_l1_loss,
    l1_loss,
    l2_loss,
    psnr_loss,
    restoration_loss,
)


def test_losses_values_and_errors() -> None:
    a, b = torch.zeros(1, 3, 8, 8), torch.full((1, 3, 8, 8), 0.5)
    assert l1_loss(a, b).item() == pytest.approx(0.5)
    assert charbonnier_loss(a, b).item() == pytest.approx(np.sqrt(0.25 + 1e-6))
    assert charbonnier_loss(a, a).item() == pytest.approx(1e-3)
    assert fft_l1_loss(b, b).item() == 0.0
    assert fft_l1_loss(a, b).item() > 0
    combined = restoration_loss(a, b, "l1", freq_weight=0.1)
    assert combined.item() == pytest.approx(0.5 + 0.1 * fft_l1_loss(a, b).item())
    assert l2_loss(a, b).item() == pytest.approx(0.25)
    assert set(LOSSES.names()) == {"charbonnier", "l1", "l2", "psnr"}
    with pytest.raises(ValueError, match="shapes differ"):
        l1_loss(a, b[..., :4])
    with pytest.raises(ValueError, match="eps must be > 0, got 0"):
        charbonnier_loss(a, b, eps=0)
    with pytest.raises(ValueError, match="freq_weight must be >= 0, got -1"):
        restoration_loss(a, b, "l1", freq_weight=-1)
    with pytest.raises(KeyError, match="available: charbonnier, l1, l2, psnr"):
        restoration_loss(a, b, "ssim")


def test_psnr_loss_is_minus_the_mean_per_image_psnr() -> None:
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    noise = np.array([4.0, 40.0]).reshape(2, 1, 1, 1)  # a mild and a strong degradation
    lq = np.clip(gt + rng.normal(0, 1, gt.shape) * noise, 0, 255).round().astype(np.uint8)
    expected = np.mean([psnr(lq[i], gt[i], crop_border=0) for i in range(2)])

    def to_batch(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(x).permute(0, 3, 1, 2).double() / 255

    loss = psnr_loss(to_batch(lq), to_batch(gt), eps=1e-12)
    assert loss.item() == pytest.approx(-expected, abs=1e-4)
    # the default eps caps a perfect image at 50 dB and barely moves a 26 dB one
    assert psnr_loss(to_batch(gt), to_batch(gt)).item() == pytest.approx(-50.0)
    assert abs(psnr_loss(to_batch(lq), to_batch(gt)).item() + expected) < 0.2
    # each image's gradient is scaled by 1/MSE: the mildly degraded image is not drowned out
    pred = to_batch(lq).requires_grad_()
    psnr_loss(pred, to_batch(gt)).backward()
    grad_norm = pred.grad.flatten(1).norm(dim=1)
    assert grad_norm[0] > 5 * grad_norm[1]
    with pytest.raises(ValueError, match="eps must be > 0"):
        psnr_loss(pred, to_batch(gt), eps=0)


def test_train_psnr_eps_is_the_psnr_losss_floor() -> None:
    gt = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    assert restoration_loss(gt, gt, "psnr").item() == pytest.approx(-50.0)  # default 1e-5
    assert restoration_loss(gt, gt, "psnr", psnr_eps=1e-3).item() == pytest.approx(-30.0)
    # a larger floor moves weight from the nearly perfect image to the badly degraded one
    pred = torch.stack([gt[0] + 0.003, gt[1] + 0.2]).requires_grad_()

    def ratio(eps: float) -> float:
        pred.grad = None
        restoration_loss(pred, gt, "psnr", psnr_eps=eps).backward()
        norms = pred.grad.flatten(1).norm(dim=1)
        return float(norms[0] / norms[1])

    assert ratio(1e-3) < ratio(1e-5) / 5
    assert restoration_loss(pred, gt, "l1", psnr_eps=1e-3).item() == l1_loss(pred, gt).item()
