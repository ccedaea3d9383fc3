"""girml.interpret.attribution: local attribution maps, the Gini index and the diffusion index."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from girml.interpret.attribution import (
    blur_path,
    diffusion_index,
    gini,
    lam,
    path_kernel,
    textured_window,
)
from tests.factories import textured_image
from tests.interpret.common import nonlinear_tiny_model


def test_lam_is_complete_and_converges() -> None:
    """Completeness: sum(attribution) = F(x) - F(baseline) up to the Riemann sum's error.

    Tolerance: the midpoint rule's error falls as 1/steps**2 on a smooth model (NAFNet has no
    ReLU). On six random tiny nonlinear NAFNets it measured 5e-6 to 1.5e-4 of |F(x) - F(x')|
    with 32 steps (float32 rounding is far below that), so 1e-3 leaves a wide margin while a
    wrongly weighted path (off by whole segments) misses it by orders of magnitude.
    """
    model = nonlinear_tiny_model(1)
    image = torch.from_numpy(textured_image(4, 24, 24)).permute(2, 0, 1)[None].float() / 255
    window = (8, 8, 6)
    coarse = lam(model, image, window, steps=1)
    fine = lam(model, image, window, steps=32)
    delta = fine.objective - fine.objective_baseline
    assert abs(delta) > 1.0
    assert abs(fine.completeness_error) <= 1e-3 * abs(delta)
    assert abs(coarse.completeness_error) > 10 * abs(fine.completeness_error)  # it converges
    assert fine.map.shape == (3, 24, 24)
    again = lam(model, image, window, steps=32, batch_size=5)  # batching changes nothing
    np.testing.assert_allclose(again.map, fine.map, rtol=1e-4, atol=1e-7)
    with pytest.raises(ValueError, match="does not fit"):
        lam(model, image, (20, 20, 6), steps=4)
    with pytest.raises(ValueError, match="steps must be >= 1, got 0"):
        lam(model, image, window, steps=0)
    with pytest.raises(ValueError, match="sigma_max must be > 0"):
        lam(model, image, window, steps=4, sigma_max=0.0)


def test_path_kernel_is_normalised_and_zero_sigma_is_the_identity() -> None:
    delta = path_kernel(0.0, 5)
    assert delta.shape == (5, 5) and float(delta.sum()) == 1.0 and float(delta[2, 2]) == 1.0
    for sigma in (0.5, 2.0):
        kernel = path_kernel(sigma, 9)
        assert float(kernel.sum()) == pytest.approx(1.0, abs=1e-12)
        assert torch.equal(kernel, kernel.flip(0)) and torch.equal(kernel, kernel.T)
    assert path_kernel(2.0, 9)[4, 4] < path_kernel(0.5, 9)[4, 4]  # wider spreads more
    with pytest.raises(ValueError, match=r"sigma must be >= 0, got -1\.0"):
        path_kernel(-1.0, 5)
    with pytest.raises(ValueError, match=r"size must be odd and >= 1, got 4"):
        path_kernel(1.0, 4)


def test_blur_path_runs_from_the_input_to_a_blur() -> None:
    image = torch.from_numpy(textured_image(2, 16, 16)).permute(2, 0, 1)[None].float() / 255
    path = blur_path(image, np.array([0.0, 1.0, 3.0]))
    assert path.shape == (3, 3, 16, 16) and path.dtype == torch.float32
    torch.testing.assert_close(path[0], image[0])  # sigma 0: the input itself
    detail = [float(p.diff(dim=-1).abs().mean()) for p in path]
    assert detail[0] > detail[1] > detail[2]  # more blur, less fine detail
    with pytest.raises(ValueError, match=r"\(1,C,H,W\), got shape \(2, 3, 16, 16\)"):
        blur_path(image.repeat(2, 1, 1, 1), np.array([1.0]))


def test_gini_and_diffusion_index() -> None:
    assert gini(np.ones(10)) == pytest.approx(0.0)
    assert gini(np.eye(1, 10).ravel()) == pytest.approx(0.9)
    assert gini(np.zeros(4)) == 0.0
    with pytest.raises(ValueError, match="non-negative"):
        gini(np.array([1.0, -1.0]))
    rng = np.random.default_rng(0)
    for _ in range(5):
        assert 0.0 <= diffusion_index(rng.normal(size=(3, 8, 8))) <= 100.0
    focused = np.zeros((3, 8, 8))
    focused[:, 4, 4] = 1.0
    spread = np.ones((3, 8, 8))
    assert diffusion_index(focused) < 5.0 < 95.0 < diffusion_index(spread)
    with pytest.raises(ValueError, match=r"\(C,H,W\)"):
        diffusion_index(np.ones((8, 8)))


def test_textured_window_finds_the_busy_patch() -> None:
    image = np.full((32, 32, 3), 128, dtype=np.uint8)
    image[16:, 16:] = textured_image(0, 16, 16)
    y, x, size = textured_window(image, 8)
    assert size == 8 and y >= 12 and x >= 12
    with pytest.raises(ValueError, match="window size"):
        textured_window(image, 40)
