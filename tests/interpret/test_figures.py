"""girml.interpret.figures: PNG figures and image grids of the interpretation report."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from girml.interpret import figures
from girml.interpret.figures import (
    ComparisonRow,
    LamPanel,
    SensitivityPanel,
    bar_figure,
    comparison_figure,
    error_map,
    heat_overlay,
    lam_figure,
    mosaic,
    sensitivity_figure,
    tsne_figure,
    with_box,
)
from tests.factories import textured_image


def decode(png: bytes) -> np.ndarray:
    """The RGB pixels of PNG bytes (and a check that they are a PNG)."""
    with Image.open(io.BytesIO(png)) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("RGB"))


def test_mosaic_places_zoomed_tiles_in_a_grid() -> None:
    red = np.zeros((4, 6, 3), dtype=np.uint8)
    red[..., 0] = 255
    blue = np.zeros((4, 6, 3))  # floats in [0, 1] are converted
    blue[..., 2] = 1.0
    pixels = decode(mosaic([("a", [red, blue]), ("b", [red])], ["left", "right"]))
    rows, zoomed = 2, 4 * figures.ZOOM
    assert (
        pixels.shape[0]
        == figures.LABEL_HEIGHT + rows * (figures.LABEL_HEIGHT + zoomed + figures.GAP) + figures.GAP
    )
    top, left = 2 * figures.LABEL_HEIGHT, figures.GAP
    assert (pixels[top : top + zoomed, left : left + 6 * figures.ZOOM] == (255, 0, 0)).all()
    assert (pixels == (0, 0, 255)).all(axis=2).sum() == zoomed * 6 * figures.ZOOM  # one blue
    again = decode(mosaic([("a", [red, blue]), ("b", [red])], ["left", "right"]))
    assert np.array_equal(pixels, again)
    with pytest.raises(ValueError, match="at least one row"):
        mosaic([], ["x"])


def test_with_box_outlines_the_window_on_a_copy() -> None:
    image = np.zeros((10, 10, 3), dtype=np.uint8)
    boxed = with_box(image, (2, 3, 4))
    assert not image.any()  # the input is left alone
    green = (boxed == figures.WINDOW_COLOUR).all(axis=2)
    assert green[2, 3:7].all() and green[5, 3:7].all() and green[2:6, 3].all()
    assert green.sum() == 12  # the 1 px outline of a 4x4 square, nothing inside or outside
    assert not green[3:5, 4:6].any()


def test_heat_overlay_is_hottest_where_the_attribution_is() -> None:
    image = np.full((8, 8, 3), 128, dtype=np.uint8)
    attribution = np.zeros((3, 8, 8))
    attribution[:, 2, 5] = -4.0  # the sign does not matter
    out = heat_overlay(image, attribution)
    assert out.shape == (8, 8, 3) and out.min() >= 0.0 and out.max() <= 1.0
    brightness = out.sum(axis=2)
    assert np.unravel_index(brightness.argmax(), brightness.shape) == (2, 5)
    flat = heat_overlay(image, np.zeros((3, 8, 8)))  # no attribution: cold everywhere
    assert np.allclose(flat, flat[0, 0])


def test_error_map_grows_with_the_error() -> None:
    gt = np.full((4, 4, 3), 100, dtype=np.uint8)
    assert np.allclose(error_map(gt, gt), error_map(gt, gt)[0, 0])
    small, large = (error_map(gt + d, gt).sum() for d in (np.uint8(5), np.uint8(40)))
    assert error_map(gt + np.uint8(5), gt).shape == (4, 4, 3)
    assert small < large


def test_every_figure_is_a_png() -> None:
    rng = np.random.default_rng(0)
    xy = rng.normal(size=(6, 2))
    suites = ["single-id", "single-id", "unseen", "unseen", "mixed", "other"]
    decode(tsne_figure(xy, ["noise", "blur"] * 3, ["a", "b", "c"] * 2, suites))
    decode(bar_figure({"single-id/noise": 40.0, "unseen/haze": 55.0}, "DI", "title"))
    gt = textured_image(0, 16, 16)
    lam_png = lam_figure([LamPanel("noise #1", gt, rng.normal(size=(3, 16, 16)), (4, 4, 8), 50.0)])
    assert decode(lam_png).shape[0] > 16 * figures.ZOOM
    row = ComparisonRow("noise worst", gt, gt, gt, 20.0, 21.5)
    assert decode(comparison_figure([row, row])).shape[0] > 2 * 16 * figures.ZOOM
    panel = SensitivityPanel(
        title="noise: gaussian_noise",
        xlabel="sigma",
        values=[10.0, 30.0, 60.0],
        curves={"model": [1.0, 2.0, 0.5], "nlm": [0.5, 1.0, 0.2]},
        id_range=(15.0, 50.0),
        ood_range=(50.0, 70.0),
        log=False,
        segments=[("unified (bench single-id)", (15.0, 50.0), 1.5)],
    )
    decode(sensitivity_figure([panel, panel]))
