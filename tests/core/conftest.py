"""Fixtures shared by the tiled-inference and self-ensemble tests."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from girml.config import ModelConfig
from girml.models import build_model
from tests.factories import textured_image


@pytest.fixture(scope="module")
def nafnet() -> nn.Module:
    """A small NAFNet moved away from identity, so tiles change (their blending matters) and the
    self-ensemble's views disagree a little."""
    torch.manual_seed(0)
    net = build_model(ModelConfig(width=8, enc_blocks=[1, 1], middle_blocks=1))
    with torch.no_grad():
        for param in net.parameters():
            param.add_(0.05 * torch.randn_like(param))
    return net.eval()


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    """(1,3,75,101): not square, so transposed views have another shape, and not a multiple of
    the tile, so the last tiles shift inward on both axes."""
    return torch.from_numpy(textured_image(3, 75, 101)).permute(2, 0, 1)[None].float() / 255
