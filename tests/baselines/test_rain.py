"""girml.baselines.rain: a median filter along the streaks that keeps what is not brighter."""

from __future__ import annotations

import numpy as np

from girml.baselines import BASELINES
from tests.baselines.common import degrade, gain


def test_median_removes_rain(gt: np.ndarray) -> None:
    assert gain("median", degrade(gt, "rain", count=600.0, length=20.0, seed=0), gt) > 5.0


def test_median_never_brightens(gt: np.ndarray) -> None:
    lq = degrade(gt, "rain", count=300.0, length=15.0, seed=1)
    assert (BASELINES.get("median")(lq).astype(int) <= lq.astype(int)).all()
