"""girml.degradations.lowlight: gamma darkening, exposure and read noise."""

from __future__ import annotations

import pytest
import torch

from tests.degradations.common import flat, run, textured


def test_low_light_lowers_brightness() -> None:
    image = textured(11, (1, 3, 40, 40))
    out = run("low_light", image, gamma=2.0, exposure=0.5, noise_sigma=0.0)
    assert torch.allclose(out, 0.5 * image**2)
    assert float(run("low_light", image).mean()) < 0.5 * float(image.mean())


def test_low_light_read_noise_std_matches_sigma() -> None:
    image = flat(0.8, size=96)
    out = run("low_light", image, gamma=1.0, exposure=0.5, noise_sigma=10.0)
    assert float(out.mean()) == pytest.approx(0.4, abs=0.005)
    assert float(out.std()) == pytest.approx(10.0 / 255.0, rel=0.05)


def test_low_light_never_brightens_without_noise() -> None:
    image = textured(16, (1, 3, 24, 24))
    for gamma, exposure in ((1.0, 1.0), (1.5, 0.9), (4.0, 0.2)):
        out = run("low_light", image, gamma=gamma, exposure=exposure, noise_sigma=0.0)
        assert bool((out <= image + 1e-7).all())
    assert torch.equal(run("low_light", image, gamma=1.0, exposure=1.0, noise_sigma=0.0), image)
