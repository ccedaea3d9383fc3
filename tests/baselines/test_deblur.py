"""girml.baselines.deblur: Wiener and Richardson-Lucy deconvolution with a Gaussian PSF."""

from __future__ import annotations

import numpy as np
import pytest

from girml.baselines.deblur import PSF_RADIUS, gaussian_psf
from tests.baselines.common import degrade, gain


def test_gaussian_psf_is_a_normalised_symmetric_bump() -> None:
    psf = gaussian_psf()
    assert psf.shape == (2 * PSF_RADIUS + 1,) * 2
    assert psf.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(psf, psf.T)
    np.testing.assert_allclose(psf, psf[::-1, ::-1])
    assert psf.argmax() == psf.size // 2  # peak at the centre
    assert gaussian_psf(sigma=2.0)[PSF_RADIUS, PSF_RADIUS] < psf[PSF_RADIUS, PSF_RADIUS]


@pytest.mark.parametrize("name", ["wiener", "richardson_lucy"])
def test_deconvolution_raises_psnr_on_gaussian_blur(name: str, gt: np.ndarray) -> None:
    assert gain(name, degrade(gt, "gaussian_blur", 1.5), gt) > 1.0
