"""NAFNet (girml/models/nafnet.py): the U-Net's depth from the config and the paper's blocks
(LayerNorm2d, SCA with its optional max pooling, NAFBlock), the ICNR upsamplers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from girml.models import NAFNet, build_model
from girml.models.nafnet import SCA, LayerNorm2d, NAFBlock, icnr_
from tests.models.common import activate_blocks, tiny_cfg

pytestmark = pytest.mark.usefixtures("single_thread")


def count_blocks(module: nn.Module) -> int:
    return sum(isinstance(m, NAFBlock) for m in module.modules())


def test_size_multiple_follows_the_depth() -> None:
    assert build_model(tiny_cfg("nafnet", enc_blocks=[1, 0, 2])).size_multiple == 8
    assert build_model(tiny_cfg("nafnet", enc_blocks=[1])).size_multiple == 2


def test_nafnet_block_counts_follow_config() -> None:
    model = build_model(tiny_cfg("nafnet", enc_blocks=[2, 0, 1], middle_blocks=3))
    assert isinstance(model, NAFNet)
    assert [count_blocks(e) for e in model.encoders] == [2, 0, 1]
    assert count_blocks(model.middle) == 3
    assert [count_blocks(d) for d in model.decoders] == [1, 1, 1]  # None -> ones
    model = build_model(tiny_cfg("nafnet", enc_blocks=[1, 1], dec_blocks=[0, 2]))
    assert [count_blocks(d) for d in model.decoders] == [0, 2]


def test_fresh_nafblock_is_identity_and_active_block_is_not() -> None:
    """Paper init (beta = gamma = 0) makes a fresh block the identity; training moves off it."""
    torch.manual_seed(0)
    block = NAFBlock(8)
    feat = torch.rand(2, 8, 12, 12)
    torch.testing.assert_close(block(feat), feat, rtol=0, atol=0)
    activate_blocks(block)
    assert (block(feat) - feat).abs().mean() > 1e-2


def test_sca_max_pool_starts_as_plain_sca_and_reads_the_maximum() -> None:
    torch.manual_seed(0)
    plain, with_max = SCA(4), SCA(4, max_pool=True)
    with_max.conv.load_state_dict(plain.conv.state_dict())
    flat = torch.full((1, 4, 6, 6), 0.5)
    spiky = flat.clone()
    spiky[..., 0, 0] = 0.5 + 35 * 0.4  # the same ...
    spiky[..., 1:, 1:] -= 0.4 * 35 / 25  # ... channel means, a different maximum
    torch.testing.assert_close(spiky.mean(dim=(2, 3)), flat.mean(dim=(2, 3)))
    torch.testing.assert_close(with_max(spiky), plain(spiky), rtol=0, atol=0)  # fresh: same
    torch.testing.assert_close(plain(spiky) / spiky, plain(flat) / flat)  # avg: same attention
    with torch.no_grad():
        with_max.max_conv.weight.normal_()
    assert not torch.allclose(with_max(spiky) / spiky, with_max(flat) / flat)
    model = build_model(tiny_cfg("nafnet", sca_max=True))
    assert all(
        block.sca.max_conv is not None for block in model.modules() if isinstance(block, NAFBlock)
    )
    assert model(torch.rand(1, 3, 11, 13)).shape == (1, 3, 11, 13)


def test_layernorm2d_normalises_each_pixel_over_channels() -> None:
    torch.manual_seed(0)
    norm = LayerNorm2d(6)
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    x = torch.randn(2, 6, 5, 7) * 3 + 1
    mean = x.mean(dim=1, keepdim=True)
    var = (x - mean).square().mean(dim=1, keepdim=True)
    expected = (x - mean) / torch.sqrt(var + norm.eps) * norm.weight + norm.bias
    torch.testing.assert_close(norm(x), expected, rtol=1e-5, atol=1e-5)
    assert norm(x).shape == x.shape


def test_fresh_upsamplers_are_checkerboard_free() -> None:
    """ICNR: a fresh up layer repeats each value over its 2x2 block (nearest neighbour)."""
    torch.manual_seed(0)
    model = build_model(tiny_cfg("nafnet"))
    for level, up in enumerate(model.ups):
        channels = up[0].in_channels
        out = up(torch.rand(1, channels, 5, 7))
        block = F.interpolate(out[..., ::2, ::2], scale_factor=2, mode="nearest")
        torch.testing.assert_close(out, block, rtol=0, atol=0, msg=f"level {level}")
        assert out.std() > 0
    plain = nn.Sequential(nn.Conv2d(8, 16, 1, bias=False), nn.PixelShuffle(2))
    out = plain(torch.rand(1, 8, 5, 7))
    assert (out[..., ::2, ::2] - out[..., 1::2, 1::2]).abs().max() > 1e-3  # default init is not
    with pytest.raises(ValueError, match="multiple of 2"):
        icnr_(torch.empty(6, 4, 1, 1), scale=2)
