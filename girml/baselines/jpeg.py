"""JPEG baseline: a deblocking filter across the 8x8 block boundaries (H.264 in spirit).

JPEG quantises each 8x8 block independently, leaving steps at the block boundaries. At every
boundary (grid anchored at the top-left pixel, as for an image compressed at its current size)
the step between the two boundary pixels, less the local gradient, is spread linearly over the
three pixels on each side; the filter is skipped where the step is large (a real edge) or
where either side is itself textured, as in H.264's ``alpha``/``beta`` tests.
"""

from __future__ import annotations

import numpy as np

from girml.baselines.core import register_baseline

BLOCK = 8
ALPHA = 24.0  # largest corrected step, 8-bit units: larger steps are real edges
BETA = 8.0  # largest |p1 - p0| and |q1 - q0|: textured sides are left alone
# Share of the step removed at distance 0, 1, 2 from the boundary on each side.
_WEIGHTS = (3 / 8, 2 / 8, 1 / 8)


def _filter_columns(x: np.ndarray) -> np.ndarray:
    """Deblock the vertical boundaries (between columns 8k-1 and 8k) of (H, W, C) float."""
    out = x.copy()
    for edge in range(BLOCK, x.shape[1] - 2, BLOCK):  # each edge needs 3 columns either side
        p2, p1, p0 = x[:, edge - 3], x[:, edge - 2], x[:, edge - 1]
        q0, q1, q2 = x[:, edge], x[:, edge + 1], x[:, edge + 2]
        step = (q0 - p0) - ((p0 - p1) + (q1 - q0)) / 2
        smooth = (np.abs(q0 - p0) < ALPHA) & (np.abs(p1 - p0) < BETA) & (np.abs(q1 - q0) < BETA)
        step = np.where(smooth, step, 0.0)
        for k, w in enumerate(_WEIGHTS):
            out[:, edge - 1 - k] = (p0, p1, p2)[k] + w * step
            out[:, edge + k] = (q0, q1, q2)[k] - w * step
    return out


@register_baseline(
    "deblock",
    family="jpeg",
    description="8x8 block-boundary deblocking filter (step spread over 3+3 pixels)",
)
def deblock(lq: np.ndarray) -> np.ndarray:
    """Smooth the steps at JPEG block boundaries, first across columns then across rows."""
    x = lq.astype(np.float64)
    x = _filter_columns(x)
    x = _filter_columns(x.transpose(1, 0, 2)).transpose(1, 0, 2)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)
