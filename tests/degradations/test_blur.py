"""girml.degradations.blur: Gaussian, anisotropic, generalized Gaussian, motion and defocus blur."""

from __future__ import annotations

import pytest
import torch

from girml.degradations.blur import gaussian_kernel
from tests.degradations.common import flat, high_band_energy, run, textured

BLURS = [
    "gaussian_blur",
    "aniso_gaussian_blur",
    "generalized_gaussian_blur",
    "motion_blur",
    "defocus_blur",
]


@pytest.mark.parametrize("op", BLURS)
def test_blur_removes_high_frequencies_and_keeps_flat(op: str) -> None:
    image = textured(3, (1, 3, 48, 48))
    assert high_band_energy(run(op, image)) < 0.2 * high_band_energy(image)
    assert torch.allclose(run(op, flat(0.4, 24)), flat(0.4, 24), atol=1e-6)


def test_gaussian_kernel_sums_to_one_and_is_capped() -> None:
    for sigma in (0.3, 1.0, 2.5, 10.0):
        kernel = gaussian_kernel(sigma)
        assert float(kernel.sum()) == pytest.approx(1.0, abs=1e-12)
        assert kernel.shape[0] % 2 == 1 and kernel.shape[0] <= 41
        assert torch.equal(kernel, kernel.flip(0)) and torch.equal(kernel, kernel.T)
    assert gaussian_kernel(10.0).shape == (41, 41)
    with pytest.raises(ValueError, match="-1"):
        gaussian_kernel(-1.0)


def test_stronger_blur_removes_more() -> None:
    image = textured(4, (1, 3, 48, 48))
    weak = high_band_energy(run("gaussian_blur", image, sigma=0.8))
    strong = high_band_energy(run("gaussian_blur", image, sigma=2.5))
    assert strong < weak


def test_aniso_blur_is_directional() -> None:
    impulse = torch.zeros(1, 1, 31, 31)
    impulse[..., 15, 15] = 1.0
    psf = run("aniso_gaussian_blur", impulse, sigma_x=3.0, sigma_y=0.5, theta=0.0)[0, 0]
    assert float(psf[15].sum()) > 3 * float(psf[:, 15].sum())  # spread along rows (x)


def test_blur_works_on_images_smaller_than_kernel() -> None:
    out = run("gaussian_blur", textured(5, (1, 3, 5, 7)), sigma=6.0)
    assert out.shape == (1, 3, 5, 7)
