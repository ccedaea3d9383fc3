"""girml.baselines.haze: dark channel prior dehazing."""

from __future__ import annotations

import numpy as np

from girml.baselines.haze import airlight, dark_channel_map
from tests.baselines.common import degrade, gain


def test_dark_channel_map_is_a_local_channel_minimum() -> None:
    image = np.full((9, 9, 3), 0.8)
    image[4, 4, 1] = 0.1  # one dark green value
    dark = dark_channel_map(image, patch=3)
    assert dark.shape == (9, 9)
    assert (dark[3:6, 3:6] == 0.1).all() and dark[0, 0] == 0.8 and dark[8, 8] == 0.8


def test_airlight_is_the_colour_of_the_haziest_pixels() -> None:
    image = np.zeros((20, 25, 3))  # 500 pixels: the brightest 0.1% is one
    image[5, 7] = (0.9, 0.8, 0.7)  # the one pixel with the brightest dark channel
    assert airlight(image, dark_channel_map(image, patch=1)).tolist() == [0.9, 0.8, 0.7]


def test_dark_channel_moves_a_hazed_crop_closer_to_gt(gt: np.ndarray) -> None:
    assert gain("dark_channel", degrade(gt, "haze", A=0.8, beta=1.5, seed=0), gt) > 2.0
