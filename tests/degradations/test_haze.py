"""girml.degradations.haze: the atmospheric scattering model over a pseudo depth."""

from __future__ import annotations

import torch

from girml.degradations.haze import depth_proxy
from tests.degradations.common import flat, run, textured


def test_haze_moves_pixels_toward_airlight() -> None:
    image = textured(10, (1, 3, 40, 40))
    airlight = 0.9
    distance = (image - airlight).abs()
    light = (run("haze", image, A=airlight, beta=0.5) - airlight).abs()
    dense = (run("haze", image, A=airlight, beta=2.0) - airlight).abs()
    assert bool((light <= distance + 1e-6).all()) and bool((dense <= light + 1e-6).all())
    assert float(dense.mean()) < float(light.mean()) < float(distance.mean())
    top, bottom = dense[..., :5, :].mean(), dense[..., -5:, :].mean()
    assert float(top) < float(bottom), "the top of the frame is farther, so hazier"


def test_depth_proxy_is_far_at_the_top_and_seeded() -> None:
    image = flat(0.5, size=32)
    depth = depth_proxy(image, seed=3)
    assert depth.shape == (1, 1, 32, 32) and depth.dtype == image.dtype
    assert float(depth.min()) >= 0.0 and float(depth.max()) <= 1.0
    assert float(depth[..., :4, :].mean()) > float(depth[..., -4:, :].mean())
    assert torch.equal(depth, depth_proxy(image, seed=3))
    assert not torch.equal(depth, depth_proxy(image, seed=4))  # another random field
    dark = depth_proxy(flat(0.0, size=32), seed=3)
    assert bool((dark >= depth).all())  # dark regions count as a little farther
