"""girml.baselines.core: registering a baseline, the identity floor and the shared helpers."""

from __future__ import annotations

import numpy as np
import pytest

from girml.baselines import BASELINES, core, guided_filter, register_baseline
from girml.baselines.core import box_mean, from_unit, luma, to_unit
from girml.core.registry import Registry


def test_identity_returns_a_copy(gt: np.ndarray) -> None:
    out = BASELINES.get("identity")(gt)
    np.testing.assert_array_equal(out, gt)
    assert out is not gt


def test_register_baseline_records_metadata_and_checks_the_output(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry: Registry = Registry("baseline")
    monkeypatch.setattr(core, "BASELINES", registry)  # keep the real registry as it is

    @register_baseline("halve", family="none", description="bad: half the width")
    def halve(lq: np.ndarray) -> np.ndarray:
        return lq[:, ::2].copy()

    assert registry.names() == ["halve"]
    assert registry.meta("halve") == {"family": "none", "description": "bad: half the width"}
    with pytest.raises(RuntimeError, match=r"baseline halve returned uint8 \(4, 2, 3\)"):
        registry.get("halve")(np.zeros((4, 4, 3), np.uint8))


def test_unit_conversions_round_trip_and_clip() -> None:
    image = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    unit = to_unit(image)
    assert unit.dtype == np.float64 and unit.min() == 0.0 and unit.max() == 1.0
    np.testing.assert_array_equal(from_unit(unit), image)
    assert from_unit(np.array([-0.5, 0.5, 1.5])).tolist() == [0, 128, 255]


def test_luma_and_box_mean() -> None:
    white = np.ones((2, 2, 3))
    np.testing.assert_allclose(luma(white), 1.0)  # the BT.601 weights sum to one
    assert luma(np.array([[[0.0, 1.0, 0.0]]]))[0, 0] == pytest.approx(0.587)
    image = np.zeros((5, 5))
    image[2, 2] = 9.0
    means = box_mean(image, 1)
    assert means[2, 2] == pytest.approx(1.0) and means[0, 0] == 0.0
    assert box_mean(np.full((4, 6, 3), 0.25), 2).shape == (4, 6, 3)


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
