"""girml.degradations.jpeg: JPEG compression round trips."""

from __future__ import annotations

import torch

from tests.degradations.common import psnr, run, textured


def test_jpeg_quality_orders_psnr() -> None:
    image = torch.nn.functional.avg_pool2d(textured(8, (1, 3, 66, 66)), 3, stride=1)
    scores = [psnr(run("jpeg", image, quality=q), image) for q in (10, 40, 90)]
    assert scores[0] < scores[1] < scores[2]
    assert not torch.equal(run("jpeg", image, quality=10), run("jpeg", image, quality=90))


def test_jpeg_output_is_on_8bit_grid_and_handles_gray() -> None:
    out = run("jpeg", textured(9, (2, 1, 17, 23)), quality=50)
    assert out.shape == (2, 1, 17, 23)
    assert torch.equal(out * 255, (out * 255).round())
