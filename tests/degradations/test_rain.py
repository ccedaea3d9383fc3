"""girml.degradations.rain: synthetic rain streaks screened over the image."""

from __future__ import annotations

import pytest

from girml.degradations.rain import streak_kernel
from tests.degradations.common import flat, run


def test_rain_adds_oriented_bright_streaks() -> None:
    image = flat(0.3, size=96)
    out = run("rain", image, count=60.0, length=20.0, width=1.0, angle=0.0, intensity=0.8)
    added = out - image
    assert float(added.min()) >= 0.0 and float(out.mean()) > float(image.mean()) + 0.005
    across = float((added[..., :, 1:] - added[..., :, :-1]).abs().mean())
    along = float((added[..., 1:, :] - added[..., :-1, :]).abs().mean())
    assert across > 2 * along  # vertical streaks: sharp across (x), smooth along (y)


def test_rain_count_scales_signal() -> None:
    image = flat(0.2, size=96)
    few = float(run("rain", image, count=10.0).mean())
    many = float(run("rain", image, count=200.0).mean())
    assert many > few > 0.2


def test_streak_kernel_is_a_line_through_the_centre() -> None:
    vertical = streak_kernel(length=9.0, width=1.0, angle=0.0)
    size = vertical.shape[0]
    assert size % 2 == 1 and vertical.shape == (size, size)
    assert float(vertical.max()) == 1.0 and float(vertical.min()) >= 0.0
    centre = size // 2
    assert float(vertical[:, centre].sum()) == pytest.approx(9.0, abs=1.0)  # its length
    assert float(vertical[centre].sum()) == pytest.approx(1.0, abs=0.5)  # its width
    tilted = streak_kernel(length=9.0, width=1.0, angle=90.0)  # horizontal
    assert float(tilted[centre].sum()) == pytest.approx(9.0, abs=1.0)
    with pytest.raises(ValueError, match=r"got 0\.0, 1\.0"):
        streak_kernel(0.0, 1.0, 0.0)
