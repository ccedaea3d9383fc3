"""girml.baselines.jpeg: deblocking across the 8x8 JPEG block boundaries."""

from __future__ import annotations

import numpy as np

from girml.baselines import BASELINES
from girml.metrics import psnr
from tests.baselines.common import degrade


def _blockiness(image: np.ndarray) -> float:
    """Mean horizontal gradient across 8x8 block boundaries over that inside the blocks."""
    dx = np.abs(np.diff(image.astype(np.float64).mean(axis=2), axis=1))
    return float(dx[:, 7::8].mean() / np.delete(dx, np.s_[7::8], axis=1).mean())


def test_deblock_reduces_blockiness_and_raises_psnr(gt: np.ndarray) -> None:
    lq = degrade(gt, "jpeg", 10)
    out = BASELINES.get("deblock")(lq)
    assert _blockiness(lq) > 2.0 > 1.8 > _blockiness(out) > _blockiness(gt) - 0.1
    assert psnr(out, gt) > psnr(lq, gt) + 0.1


def test_deblock_leaves_real_edges_alone() -> None:
    edge = np.zeros((16, 16, 3), np.uint8)
    edge[:, 8:] = 200  # a step of 200 on a block boundary: far above ALPHA, a real edge
    np.testing.assert_array_equal(BASELINES.get("deblock")(edge), edge)
