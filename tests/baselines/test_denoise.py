"""girml.baselines.denoise: non-local means, BM3D when installed, and the noise estimate."""

from __future__ import annotations

import numpy as np
import pytest

from girml.baselines import BASELINES
from girml.baselines.denoise import noise_sigma
from girml.metrics import psnr
from tests.baselines.common import degrade, gain


def test_noise_sigma_estimates_the_added_noise() -> None:
    assert noise_sigma(np.full((32, 32, 3), 0.5)) == pytest.approx(0.0, abs=1e-12)  # no NaN
    rng = np.random.default_rng(0)
    flat = np.full((96, 96, 3), 0.5)
    for sigma in (0.02, 0.08):
        assert noise_sigma(flat + rng.normal(0.0, sigma, flat.shape)) == pytest.approx(
            sigma, rel=0.15
        )


def test_nlm_raises_psnr_on_noise(gt: np.ndarray) -> None:
    assert gain("nlm", degrade(gt, "gaussian_noise", 25.0, seed=0), gt) > 5.0


def test_bm3d_when_installed(gt: np.ndarray) -> None:
    pytest.importorskip("bm3d")
    assert BASELINES.meta("bm3d")["family"] == "noise"
    clean = gt[40:88, 30:77]  # 48x47: BM3D costs seconds per call whatever the size
    lq = degrade(clean, "gaussian_noise", 25.0, seed=0)
    out = BASELINES.get("bm3d")(lq)
    assert out.shape == lq.shape and out.dtype == np.uint8
    assert psnr(out, clean) > psnr(lq, clean) + 5.0
