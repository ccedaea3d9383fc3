"""Restorers as the harness runs them (girml.evaluation.restorers): networks on uint8 images,
self-ensembles and tiles, batch wrappers that keep each image's exception, and output checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from girml.config import EvaluateConfig
from girml.evaluation.bench import BenchItem
from girml.evaluation.restorers import checked_output, model_restorer, per_image, usable_output
from tests.factories import textured_image

ITEM = BenchItem("single-id", "noise", "0000", "src", "id", Path("lq.png"), Path("gt.png"))


def test_the_models_are_scored_with_evaluate_self_ensemble() -> None:
    class Ramp(torch.nn.Module):  # not flip-equivariant: the x8 views average the ramp out
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + torch.linspace(0, 0.2, x.shape[-1])

    lq = np.zeros((8, 8, 3), np.uint8)
    once, plus = model_restorer(Ramp(), None), model_restorer(Ramp(), None, 8)
    assert once(lq)[0, -1, 0] == 51 and (plus(lq) == 26).all()  # 0.2 -> 51; mean 0.1 -> 26
    assert EvaluateConfig().self_ensemble == 8
    with pytest.raises(ValidationError, match="self_ensemble"):
        EvaluateConfig(self_ensemble=3)


def test_a_pointwise_network_gives_the_same_output_whole_or_tiled() -> None:
    class Invert(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return 1 - x

    lq = textured_image(0, 40, 56)
    whole, tiled = model_restorer(Invert(), None), model_restorer(Invert(), 16)
    assert (whole(lq) == 255 - lq).all()
    assert (tiled(lq) == whole(lq)).all() and tiled(lq).dtype == np.uint8


def test_per_image_keeps_each_images_exception() -> None:
    def picky(lq: np.ndarray) -> np.ndarray:
        if lq.mean() > 100:
            raise RuntimeError("too bright")
        return lq

    dark, bright = np.zeros((4, 4, 3), np.uint8), np.full((4, 4, 3), 200, np.uint8)
    outcomes = per_image(picky)([ITEM, ITEM], [dark, bright])
    assert outcomes[0] is dark and isinstance(outcomes[1], RuntimeError)


def test_an_unusable_output_becomes_the_exception_that_says_why() -> None:
    lq = np.zeros((4, 6, 3), np.uint8)
    assert usable_output(lq.copy(), lq, "m", ITEM.lq).shape == lq.shape
    half = usable_output(lq[::2], lq, "m", ITEM.lq)
    assert isinstance(half, ValueError) and "returned (2, 6, 3)" in str(half)
    assert isinstance(usable_output(lq.astype(np.float32), lq, "m", ITEM.lq), ValueError)
    assert isinstance(usable_output(None, lq, "m", ITEM.lq), TypeError)
    boom = RuntimeError("boom")
    assert usable_output(boom, lq, "m", ITEM.lq) is boom
    with pytest.raises(ValueError, match=r"method 'm' returned \(2, 6, 3\) for lq\.png"):
        checked_output(lq[::2], lq, "m", ITEM.lq)
