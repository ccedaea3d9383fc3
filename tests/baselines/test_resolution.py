"""girml.baselines.resolution: bicubic resampling followed by unsharp masking."""

from __future__ import annotations

import numpy as np

from girml.baselines import BASELINES
from tests.baselines.common import degrade


def _gradient_energy(image: np.ndarray) -> float:
    y = image.astype(np.float64).mean(axis=2)
    return float(np.abs(np.diff(y, axis=0)).mean() + np.abs(np.diff(y, axis=1)).mean())


def test_sharpening_restores_high_frequencies_lost_to_resampling(gt: np.ndarray) -> None:
    lq = degrade(gt, "resize", 2.0)
    out = BASELINES.get("bicubic_sharpen")(lq)
    assert _gradient_energy(lq) < _gradient_energy(out) < _gradient_energy(gt)
