"""girml.baselines: the registry of every baseline and the contract each one keeps."""

from __future__ import annotations

import numpy as np
import pytest

from girml.baselines import BASELINES

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
# bm3d (optional) takes seconds per image whatever its size: it has its own test.
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
