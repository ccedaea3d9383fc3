"""girml.metrics: PSNR/SSIM conformance with BasicSR, and the block shift of tone changes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage import data
from skimage.metrics import structural_similarity

from girml.core.imageio import to_tensor, to_uint8
from girml.degradations import OPS
from girml.metrics import block_shift, psnr, rgb_to_y, ssim


def _pair(seed: int, shape: tuple[int, int, int] = (23, 29, 3)) -> tuple[np.ndarray, np.ndarray]:
    """A fixed random image and a noisy copy of it (so SSIM is far from both 0 and 1)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, shape, dtype=np.uint8)
    b = np.clip(a.astype(np.int64) + rng.integers(-40, 41, shape), 0, 255).astype(np.uint8)
    return a, b


# --- independent references -------------------------------------------------------------------


def _ref_y(img: np.ndarray) -> np.ndarray:
    """BasicSR ``bgr2ycbcr(y_only=True)`` written per pixel on RGB input."""
    out = np.empty(img.shape[:2])
    for i in range(img.shape[0]):
        for j in range(img.shape[1]):
            r, g, b = (float(v) for v in img[i, j])
            out[i, j] = (65.481 * r + 128.553 * g + 24.966 * b) / 255.0 + 16.0
    return out


def _ref_psnr(a: np.ndarray, b: np.ndarray) -> float:
    diff = a.astype(np.float64) - b.astype(np.float64)
    return 10.0 * math.log10(255.0**2 / (diff**2).mean())


def _ref_ssim_channel(x: np.ndarray, y: np.ndarray) -> float:
    """BasicSR ``_ssim`` with explicit loops over every position where the 11x11 window fits."""
    k = np.exp(-((np.arange(11) - 5.0) ** 2) / (2 * 1.5**2))
    w = np.outer(k, k) / np.outer(k, k).sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    values = []
    for i in range(x.shape[0] - 10):
        for j in range(x.shape[1] - 10):
            px, py = x[i : i + 11, j : j + 11], y[i : i + 11, j : j + 11]
            mx, my = (w * px).sum(), (w * py).sum()
            vx, vy = (w * px * px).sum() - mx**2, (w * py * py).sum() - my**2
            cxy = (w * px * py).sum() - mx * my
            values.append(
                (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
            )
    return float(np.mean(values))


def _ref_ssim(a: np.ndarray, b: np.ndarray, crop: int, test_y: bool) -> float:
    if crop:
        a, b = a[crop:-crop, crop:-crop], b[crop:-crop, crop:-crop]
    if test_y:
        return _ref_ssim_channel(_ref_y(a), _ref_y(b))
    x, y = a.astype(np.float64), b.astype(np.float64)
    return float(np.mean([_ref_ssim_channel(x[..., c], y[..., c]) for c in range(3)]))


# --- PSNR / SSIM -------------------------------------------------------------------------------


@pytest.mark.parametrize("crop", [0, 3])
@pytest.mark.parametrize("test_y", [False, True])
def test_psnr_matches_hand_computation(crop: int, test_y: bool) -> None:
    a, b = _pair(1)
    if crop:
        a_c, b_c = a[crop:-crop, crop:-crop], b[crop:-crop, crop:-crop]
    else:
        a_c, b_c = a, b
    expected = _ref_psnr(_ref_y(a_c), _ref_y(b_c)) if test_y else _ref_psnr(a_c, b_c)
    assert psnr(a, b, crop_border=crop, test_y=test_y) == pytest.approx(expected, abs=1e-9)


def test_psnr_known_values() -> None:
    zeros = np.zeros((8, 8, 3), np.uint8)
    assert psnr(zeros, zeros) == math.inf
    assert psnr(zeros, zeros + 10) == pytest.approx(10 * math.log10(255**2 / 100))


def test_rgb_to_y_matches_reference() -> None:
    a, _ = _pair(2, (5, 7, 3))
    np.testing.assert_allclose(rgb_to_y(a), _ref_y(a), rtol=0, atol=1e-12)


@pytest.mark.parametrize(("crop", "test_y"), [(0, False), (0, True), (4, False), (2, True)])
def test_ssim_matches_direct_loops(crop: int, test_y: bool) -> None:
    a, b = _pair(3)
    got = ssim(a, b, crop_border=crop, test_y=test_y)
    assert 0.2 < got < 0.99
    assert got == pytest.approx(_ref_ssim(a, b, crop, test_y), abs=1e-9)


@pytest.mark.parametrize("test_y", [False, True])
def test_ssim_matches_skimage_with_basicsr_parameters(test_y: bool) -> None:
    """skimage with these parameters is BasicSR's SSIM.

    Its Gaussian has radius ``int(3.5 * 1.5 + 0.5) = 5`` (11 taps, normalised like OpenCV's) and
    it averages the map after cropping ``(11 - 1) // 2 = 5`` pixels per side, i.e. over exactly
    BasicSR's 'valid' region, so reflect-padding at the borders never enters the mean and the
    two agree to rounding error (no border difference to account for).
    """
    a, b = _pair(4, (64, 48, 3))
    kwargs = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}
    if test_y:
        expected = structural_similarity(rgb_to_y(a), rgb_to_y(b), data_range=255, **kwargs)
    else:
        expected = structural_similarity(a, b, data_range=255, channel_axis=-1, **kwargs)
    assert ssim(a, b, test_y=test_y) == pytest.approx(expected, abs=1e-9)


def test_ssim_known_values_and_order() -> None:
    img = data.astronaut()[:64, :64]
    assert ssim(img, img) == pytest.approx(1.0, abs=1e-12)
    assert ssim(img, img, test_y=True) == pytest.approx(1.0, abs=1e-12)
    x = to_tensor(img)
    light = to_uint8(OPS.get("gaussian_noise")(x, 5.0, seed=0))
    heavy = to_uint8(OPS.get("gaussian_noise")(x, 40.0, seed=0))
    assert 1.0 > ssim(img, light) > ssim(img, heavy) > 0.0


def test_full_reference_metrics_reject_bad_arguments() -> None:
    a, b = _pair(5, (16, 16, 3))
    with pytest.raises(ValueError, match="equal shapes"):
        ssim(a, b[:15])
    with pytest.raises(ValueError, match="crop_border must be in"):
        ssim(a, b, crop_border=8)
    with pytest.raises(ValueError, match="crop_border must be in"):
        psnr(a, b, crop_border=-1)
    with pytest.raises(ValueError, match="at least 11x11 pixels after crop_border, got 10x10"):
        ssim(a, b, crop_border=3)


# --------------------------------------------------------------------------- block shift


def test_block_shift_finds_the_brightened_block() -> None:
    ref = np.full((512, 768, 3), 40, dtype=np.uint8)
    assert block_shift(ref, ref) == 0
    out = ref.copy()
    out[256:512, 512:768] += 30  # one block of 256 brightened by 30 grey levels
    assert block_shift(out, ref) == pytest.approx(30.0)
    half = ref.copy()
    half[:, :384] += 10  # a step in the middle: the worst block sits on one side of it
    assert block_shift(half, ref) == pytest.approx(10.0)
    assert block_shift(ref, half) == pytest.approx(10.0)  # darker counts the same


def test_block_shift_weighs_luma_and_handles_small_images() -> None:
    ref = np.zeros((100, 60, 3), dtype=np.uint8)  # smaller than a block: one block
    out = ref.copy()
    out[..., 2] = 100  # blue only: 0.114 of its value in luma
    assert block_shift(out, ref) == pytest.approx(11.4)
    assert block_shift(out, ref, block=10) == pytest.approx(11.4)


def test_block_shift_bad_arguments() -> None:
    ref = np.zeros((32, 32, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="same shape"):
        block_shift(ref, np.zeros((32, 16, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="block must be >= 1, got 0"):
        block_shift(ref, ref, block=0)
    with pytest.raises((TypeError, ValueError), match="out"):
        block_shift(ref.astype(np.float32), ref)
