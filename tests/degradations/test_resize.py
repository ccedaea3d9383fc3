"""girml.degradations.resize: down-and-up resizing and plain downsampling."""

from __future__ import annotations

from tests.degradations.common import high_band_energy, run, textured


def test_resize_keeps_size_and_loses_high_frequencies() -> None:
    image = textured(6, (1, 3, 48, 48))
    for down in ("area", "bilinear", "bicubic"):
        out = run("resize", image, scale=3.0, down_mode=down, up_mode="bilinear")
        assert out.shape == image.shape
        assert high_band_energy(out) < 0.3 * high_band_energy(image)


def test_downsample_output_size() -> None:
    image = textured(7, (2, 3, 37, 53))
    for scale in (1.0, 2.0, 2.5, 3.7):
        out = run("downsample", image, scale=scale)
        assert out.shape == (2, 3, round(37 / scale), round(53 / scale))
