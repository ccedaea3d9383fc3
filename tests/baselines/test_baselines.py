"""Classical baselines: the shared contract, determinism, and that each one does its job."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from girml.baselines import BASELINES, guided_filter
from girml.degradations import OPS
from girml.imageio import to_tensor, to_uint8
from girml.metrics import psnr

FAMILIES = {"none", "noise", "blur", "jpeg", "resize", "haze", "lowlight", "rain"}
EXPECTED = {
    "identity",
    "bicubic_sharpen",
    "nlm",
    "wiener",
    "richardson_lucy",
    "deblock",
    "dark_channel",
    "gamma",
    "clahe",
    "median",
}
# bm3d (optional) takes seconds per image whatever its size: it has its own test below.
FAST = [name for name in BASELINES.names() if name != "bm3d"]


def _grayish(height: int = 37, width: int = 53) -> np.ndarray:
    rng = np.random.default_rng(0)
    gray = rng.integers(90, 140, (height, width, 1))
    return np.clip(gray + rng.integers(-3, 4, (height, width, 3)), 0, 255).astype(np.uint8)


def _colourful(height: int = 41, width: int = 30) -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, (height, width, 3), dtype=np.uint8)


INPUTS = {
    "grayish-37x53": _grayish(),
    "colourful-41x30": _colourful(),
    "black-9x11": np.zeros((9, 11, 3), np.uint8),
    "white-16x16": np.full((16, 16, 3), 255, np.uint8),
}


@pytest.fixture(scope="module")
def gt() -> np.ndarray:
    """A real photo crop: the astronaut's 128x128 top-left corner."""
    return data.astronaut()[:128, :128].copy()


def _degrade(image: np.ndarray, op: str, *args: object, **kwargs: object) -> np.ndarray:
    return to_uint8(OPS.get(op)(to_tensor(image), *args, **kwargs))


def _gain(name: str, lq: np.ndarray, gt: np.ndarray) -> float:
    return psnr(BASELINES.get(name)(lq), gt) - psnr(lq, gt)


# --- contract ----------------------------------------------------------------------------------


def test_registry_lists_every_baseline_with_metadata() -> None:
    assert set(BASELINES.names()) - {"bm3d"} == EXPECTED
    for name in BASELINES.names():
        meta = BASELINES.meta(name)
        assert meta["family"] in FAMILIES, name
        assert meta["description"] and "\n" not in meta["description"], name


def test_unknown_name_lists_the_available_ones() -> None:
    with pytest.raises(KeyError, match=r"unknown baseline 'bm4d'; available: .*dark_channel.*nlm"):
        BASELINES.get("bm4d")


@pytest.mark.parametrize("name", FAST)
@pytest.mark.parametrize("label", list(INPUTS))
def test_same_shape_uint8_pure_and_deterministic(name: str, label: str) -> None:
    lq = INPUTS[label]
    before = lq.copy()
    fn = BASELINES.get(name)
    out = fn(lq)
    assert out.shape == lq.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(lq, before)  # the input is never modified
    np.testing.assert_array_equal(fn(lq.copy()), out)


@pytest.mark.parametrize("name", FAST)
def test_bad_input_is_rejected(name: str) -> None:
    fn = BASELINES.get(name)
    with pytest.raises(ValueError, match=rf"baseline {name}: input must be uint8 \(H, W, 3\)"):
        fn(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="must be uint8"):
        fn(np.zeros((8, 8), np.uint8))
    with pytest.raises(TypeError, match="must be a numpy array"):
        fn([[0, 0, 0]])  # type: ignore[arg-type]


@pytest.mark.parametrize("name", FAST)
@pytest.mark.parametrize("level", [0, 128, 255])
def test_flat_input_gives_a_flat_output(name: str, level: int) -> None:
    """No NaN or division artefacts where there is no structure at all."""
    out = BASELINES.get(name)(np.full((19, 23, 3), level, np.uint8))
    assert np.ptp(out) == 0


def test_identity_returns_a_copy(gt: np.ndarray) -> None:
    out = BASELINES.get("identity")(gt)
    np.testing.assert_array_equal(out, gt)
    assert out is not gt


# --- each one does its job on a real photo crop ------------------------------------------------


def test_nlm_raises_psnr_on_noise(gt: np.ndarray) -> None:
    assert _gain("nlm", _degrade(gt, "gaussian_noise", 25.0, seed=0), gt) > 5.0


@pytest.mark.parametrize("name", ["wiener", "richardson_lucy"])
def test_deconvolution_raises_psnr_on_gaussian_blur(name: str, gt: np.ndarray) -> None:
    assert _gain(name, _degrade(gt, "gaussian_blur", 1.5), gt) > 1.0


def test_dark_channel_moves_a_hazed_crop_closer_to_gt(gt: np.ndarray) -> None:
    assert _gain("dark_channel", _degrade(gt, "haze", A=0.8, beta=1.5, seed=0), gt) > 2.0


@pytest.mark.parametrize("name", ["gamma", "clahe"])
def test_lowlight_enhancement_brightens_and_restores(name: str, gt: np.ndarray) -> None:
    lq = _degrade(gt, "low_light", gamma=2.0, exposure=0.4, seed=0)
    out = BASELINES.get(name)(lq)
    assert out.mean() > lq.mean() + 40
    assert psnr(out, gt) > psnr(lq, gt) + 5.0


def _blockiness(image: np.ndarray) -> float:
    """Mean horizontal gradient across 8x8 block boundaries over that inside the blocks."""
    dx = np.abs(np.diff(image.astype(np.float64).mean(axis=2), axis=1))
    return float(dx[:, 7::8].mean() / np.delete(dx, np.s_[7::8], axis=1).mean())


def test_deblock_reduces_blockiness_and_raises_psnr(gt: np.ndarray) -> None:
    lq = _degrade(gt, "jpeg", 10)
    out = BASELINES.get("deblock")(lq)
    assert _blockiness(lq) > 2.0 > 1.8 > _blockiness(out) > _blockiness(gt) - 0.1
    assert psnr(out, gt) > psnr(lq, gt) + 0.1


def test_median_removes_rain(gt: np.ndarray) -> None:
    assert _gain("median", _degrade(gt, "rain", count=600.0, length=20.0, seed=0), gt) > 5.0


def _gradient_energy(image: np.ndarray) -> float:
    y = image.astype(np.float64).mean(axis=2)
    return float(np.abs(np.diff(y, axis=0)).mean() + np.abs(np.diff(y, axis=1)).mean())


def test_sharpening_restores_high_frequencies_lost_to_resampling(gt: np.ndarray) -> None:
    lq = _degrade(gt, "resize", 2.0)
    out = BASELINES.get("bicubic_sharpen")(lq)
    assert _gradient_energy(lq) < _gradient_energy(out) < _gradient_energy(gt)


def test_bm3d_when_installed(gt: np.ndarray) -> None:
    pytest.importorskip("bm3d")
    assert BASELINES.meta("bm3d")["family"] == "noise"
    clean = gt[40:88, 30:77]  # 48x47: BM3D costs seconds per call whatever the size
    lq = _degrade(clean, "gaussian_noise", 25.0, seed=0)
    out = BASELINES.get("bm3d")(lq)
    assert out.shape == lq.shape and out.dtype == np.uint8
    assert psnr(out, clean) > psnr(lq, clean) + 5.0


# --- shared helper -----------------------------------------------------------------------------


def test_guided_filter_smooths_flat_areas_and_keeps_edges() -> None:
    rng = np.random.default_rng(0)
    step = np.zeros((32, 32))
    step[:, 16:] = 1.0
    noisy = step + rng.normal(0.0, 0.02, step.shape)
    out = guided_filter(noisy, noisy, radius=3, eps=1e-2)
    assert out[:, 3:12].std() < 0.5 * noisy[:, 3:12].std()  # flat side denoised
    assert out[:, 18:].mean() - out[:, :14].mean() > 0.95  # the edge survives
    flat = np.full((10, 12, 3), 0.3)
    np.testing.assert_allclose(guided_filter(flat[..., 0], flat, 2, 1e-3), flat)


@pytest.mark.parametrize(
    ("radius", "eps", "message"), [(0, 1e-3, "radius must be >= 1"), (2, 0.0, "eps must be > 0")]
)
def test_guided_filter_rejects_bad_arguments(radius: int, eps: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        guided_filter(np.zeros((8, 8)), np.zeros((8, 8)), radius, eps)
