"""The plain residual CNN baseline (girml/models/plain.py): ``plain_blocks`` residual blocks at
full resolution, no padding, and the identity map when fresh."""

from __future__ import annotations

import pytest
import torch

from girml.models import PlainCNN, build_model
from girml.models.plain import ResBlock
from tests.models.common import activate_blocks, tiny_cfg

pytestmark = pytest.mark.usefixtures("single_thread")


def test_plain_blocks_follow_config_and_need_no_padding() -> None:
    model = build_model(tiny_cfg("plain_cnn", width=6, plain_blocks=3))
    assert isinstance(model, PlainCNN)
    assert sum(isinstance(m, ResBlock) for m in model.modules()) == 3
    assert model.head.out_channels == 6 and model.tail.in_channels == 6
    assert model.size_multiple == 1  # no downsampling: any size runs unpadded
    assert model.residual(torch.rand(1, 3, 7, 5)).shape == (1, 3, 7, 5)


def test_fresh_plain_cnn_is_the_identity_and_active_is_not() -> None:
    """The output convolution starts at zero, so a fresh model returns its input exactly."""
    torch.manual_seed(0)
    model = build_model(tiny_cfg("plain_cnn"))
    x = torch.rand(2, 3, 11, 9)
    torch.testing.assert_close(model(x), x, rtol=0, atol=0)
    activate_blocks(model)
    assert (model(x) - x).abs().mean() > 1e-3


def test_res_block_adds_its_body_to_the_input() -> None:
    torch.manual_seed(0)
    block = ResBlock(4)
    feat = torch.rand(1, 4, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(block(feat), feat + block.body(feat))
        for param in block.body.parameters():
            param.zero_()
        torch.testing.assert_close(block(feat), feat, rtol=0, atol=0)
