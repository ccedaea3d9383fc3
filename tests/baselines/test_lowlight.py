"""girml.baselines.lowlight: gamma correction to a target mean and CLAHE."""

from __future__ import annotations

import numpy as np
import pytest

from girml.baselines import BASELINES
from girml.baselines.lowlight import TARGET_MEAN
from girml.metrics import psnr
from tests.baselines.common import degrade


@pytest.mark.parametrize("name", ["gamma", "clahe"])
def test_lowlight_enhancement_brightens_and_restores(name: str, gt: np.ndarray) -> None:
    lq = degrade(gt, "low_light", gamma=2.0, exposure=0.4, seed=0)
    out = BASELINES.get(name)(lq)
    assert out.mean() > lq.mean() + 40
    assert psnr(out, gt) > psnr(lq, gt) + 5.0


def test_gamma_brings_a_flat_gray_to_the_target_mean() -> None:
    for level in (10, 60, 200):  # darker or brighter, the same target
        out = BASELINES.get("gamma")(np.full((4, 4, 3), level, np.uint8))
        assert np.abs(out.astype(int) - round(255 * TARGET_MEAN)).max() <= 1
