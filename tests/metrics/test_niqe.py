"""girml.metrics.niqe: the NIQE score, its pristine model and their errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from skimage import data

from girml.core.imageio import to_tensor, to_uint8
from girml.degradations import OPS
from girml.metrics.niqe import NiqeModel, fit_niqe, niqe


def _gray3(img: np.ndarray) -> np.ndarray:
    return np.stack([img] * 3, axis=-1)


@pytest.fixture(scope="module")
def pristine() -> NiqeModel:
    """Pristine model fitted on skimage photos other than the astronaut."""
    photos = [data.coffee(), data.chelsea(), data.rocket()]
    photos += [_gray3(f()) for f in (data.camera, data.coins, data.moon, data.grass, data.gravel)]
    return fit_niqe(photos)


def test_niqe_grows_with_noise_and_blur(pristine: NiqeModel) -> None:
    img = data.astronaut()
    x = to_tensor(img)
    clean = niqe(img, pristine)
    noisy = [niqe(to_uint8(OPS.get("gaussian_noise")(x, s, seed=0)), pristine) for s in (10, 25)]
    blurred = [niqe(to_uint8(OPS.get("gaussian_blur")(x, s)), pristine) for s in (1.0, 2.0)]
    assert 0 < clean < noisy[0] < noisy[1]
    assert clean < blurred[0] < blurred[1]


def test_niqe_is_deterministic(pristine: NiqeModel) -> None:
    img = data.astronaut()[:200, :300]
    assert niqe(img, pristine) == niqe(img.copy(), pristine)
    again = fit_niqe([data.coffee(), data.chelsea()])
    twice = fit_niqe([data.coffee(), data.chelsea()])
    np.testing.assert_array_equal(again.mu, twice.mu)
    np.testing.assert_array_equal(again.cov, twice.cov)


def test_niqe_model_save_load_round_trip(pristine: NiqeModel, tmp_path: Path) -> None:
    path = tmp_path / "models" / "niqe.npz"
    pristine.save(path)
    loaded = NiqeModel.load(path)
    np.testing.assert_array_equal(loaded.mu, pristine.mu)
    np.testing.assert_array_equal(loaded.cov, pristine.cov)
    assert loaded.patch_size == pristine.patch_size == 96
    img = data.astronaut()[:192, :192]
    assert niqe(img, loaded) == niqe(img, pristine)


def test_niqe_model_load_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing\.npz"):
        NiqeModel.load(tmp_path / "missing.npz")
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match=r"corrupt\.npz"):
        NiqeModel.load(corrupt)
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, mu=np.zeros(3), cov=np.zeros((3, 3)), patch_size=96)
    with pytest.raises(ValueError, match=r"wrong\.npz: NiqeModel needs mu \(36,\)"):
        NiqeModel.load(wrong)


def test_niqe_rejects_bad_inputs(pristine: NiqeModel) -> None:
    with pytest.raises(ValueError, match="niqe image is 95x200, smaller than one 96x96"):
        niqe(data.astronaut()[:95, :200], pristine)
    with pytest.raises(ValueError, match="uint8 \\(H, W, 3\\)"):
        niqe(data.astronaut().astype(np.float32), pristine)
    with pytest.raises(ValueError, match="only flat patches"):
        niqe(np.full((96, 96, 3), 128, np.uint8), pristine)
    with pytest.raises(ValueError, match="image 1 is 50x60"):
        fit_niqe([data.coffee(), data.coffee()[:50, :60]])
    with pytest.raises(ValueError, match="patch_size must be even and >= 8, got 7"):
        fit_niqe([data.coffee()], patch_size=7)
    with pytest.raises(ValueError, match="sharpness_threshold must be in"):
        fit_niqe([data.coffee()], sharpness_threshold=1.0)
    with pytest.raises(ValueError, match="at least 2 sharp"):
        fit_niqe([])


def test_niqe_single_patch_image_is_scored(pristine: NiqeModel) -> None:
    """A 128x128 crop holds one 96x96 patch: scored with the pristine covariance alone."""
    crop = data.astronaut()[100:228, 100:228]
    score = niqe(crop, pristine)
    assert math.isfinite(score) and score > 0
