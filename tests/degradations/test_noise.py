"""girml.degradations.noise: Gaussian, Poisson (shot) and speckle noise."""

from __future__ import annotations

import pytest
import torch

from tests.degradations.common import flat, run


@pytest.mark.parametrize("gray", [False, True])
def test_gaussian_noise_std_matches_sigma(gray: bool) -> None:
    image = flat(0.5)
    noise = run("gaussian_noise", image, sigma=25.0, gray=gray) - image
    assert float(noise.std()) == pytest.approx(25.0 / 255.0, rel=0.05)
    assert abs(float(noise.mean())) < 0.01


def test_gray_noise_is_identical_across_channels() -> None:
    for op in ("gaussian_noise", "poisson_noise"):
        noise = run(op, flat(0.5), gray=True) - flat(0.5)
        assert torch.equal(noise[:, 0], noise[:, 1]) and torch.equal(noise[:, 1], noise[:, 2])
        assert not torch.equal(noise[:, 0], torch.zeros_like(noise[:, 0]))
    colour = run("gaussian_noise", flat(0.5), gray=False)
    assert not torch.equal(colour[:, 0], colour[:, 1])


@pytest.mark.parametrize(("level", "scale"), [(0.5, 50.0), (0.2, 20.0)])
def test_poisson_variance_is_level_over_scale(level: float, scale: float) -> None:
    image = flat(level, size=96)
    out = run("poisson_noise", image, scale=scale, gray=False)
    assert float(out.var()) == pytest.approx(level / scale, rel=0.08)
    assert float(out.mean()) == pytest.approx(level, abs=0.01)


def test_speckle_noise_scales_with_intensity() -> None:
    sigma = 30.0
    for level in (0.2, 0.6):
        noise = run("speckle_noise", flat(level), sigma=sigma) - flat(level)
        assert float(noise.std()) == pytest.approx(level * sigma / 255.0, rel=0.05)
