"""Architectures (girml.models) and shared inference helpers (girml.inference)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from girml.config import ModelConfig
from girml.inference import crop_to, pad_to_multiple, restore_image, restore_tiled
from girml.models import ARCHS, NAFNet, build_model, model_stats
from girml.models.nafnet import SCA, LayerNorm2d, NAFBlock, icnr_
from girml.models.prompt import PromptNAFNet

ARCH_NAMES = ["nafnet", "plain_cnn", "prompt_nafnet"]


@pytest.fixture(autouse=True, scope="module")
def single_thread() -> Iterator[None]:
    """Run this module's tests on one intra-op thread.

    Tiny convs gain nothing from more, and on a busy 2-core machine two spinning threads made
    the training tests up to 10x slower.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_cfg(arch: str, **overrides: object) -> ModelConfig:
    fields: dict[str, object] = {
        "type": arch,
        "width": 8,
        "enc_blocks": [1, 1],
        "middle_blocks": 1,
        "prompt_len": 3,
        "plain_blocks": 2,
    }
    fields.update(overrides)
    return ModelConfig(**fields)


def smooth_images(n: int, height: int, width: int, seed: int) -> torch.Tensor:
    """(n,3,H,W) float32 in [0,1]: low-frequency random content, like a natural-image patch."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, max(2, height // 8), max(2, width // 8), generator=gen)
    return F.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)


def activate_blocks(model: nn.Module, scale: float = 0.5) -> None:
    """Give the zero-initialised parameters (NAFBlocks' beta/gamma, the output convolution)
    random values, as a trained model has."""
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith(("beta", "gamma")):
                param.normal_(0.0, scale)
            elif name.startswith(("ending.", "tail.")):
                param.normal_(0.0, 0.05)


class Constant(nn.Module):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full_like(x, self.value)


class Recorder(nn.Module):
    """Pointwise model (1x1 conv + sigmoid) that records the shapes it was called with."""

    size_multiple = 4

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.shapes: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.shapes.append(tuple(x.shape))
        return torch.sigmoid(self.conv(x))


# --------------------------------------------------------------------------- registry / build


def test_registry_lists_all_architectures() -> None:
    assert ARCHS.names() == ARCH_NAMES
    assert "arXiv 2204.04676" in ARCHS.meta("nafnet")["paper"]


def test_unknown_type_lists_available_names() -> None:
    with pytest.raises(KeyError, match=r"unknown architecture 'unet'.*nafnet.*plain_cnn"):
        build_model(ModelConfig(type="unet"))


@pytest.mark.parametrize("arch", ARCH_NAMES)
@pytest.mark.parametrize("shape", [(1, 3, 37, 53), (2, 3, 16, 16), (1, 3, 1, 3)])
def test_forward_any_size(arch: str, shape: tuple[int, int, int, int]) -> None:
    torch.manual_seed(0)
    model = build_model(tiny_cfg(arch))
    activate_blocks(model)
    out = model(torch.rand(shape))
    assert out.shape == shape
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_bad_input_shape_rejected(arch: str) -> None:
    model = build_model(tiny_cfg(arch))
    with pytest.raises(ValueError, match=r"\(B,3,H,W\).*\(1, 4, 8, 8\)"):
        model(torch.rand(1, 4, 8, 8))
    with pytest.raises(ValueError, match=r"\(3, 8, 8\)"):
        model(torch.rand(3, 8, 8))


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_same_seed_same_model(arch: str) -> None:
    x = torch.rand(1, 3, 20, 24)
    outs = []
    for _ in range(2):
        torch.manual_seed(3)
        outs.append(build_model(tiny_cfg(arch))(x))
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)


def test_size_multiple_and_depth() -> None:
    assert build_model(tiny_cfg("nafnet", enc_blocks=[1, 0, 2])).size_multiple == 8
    assert build_model(tiny_cfg("prompt_nafnet")).size_multiple == 4
    assert build_model(tiny_cfg("plain_cnn")).size_multiple == 1


def count_blocks(module: nn.Module) -> int:
    return sum(isinstance(m, NAFBlock) for m in module.modules())


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


# --------------------------------------------------------------------------- prompt model


def test_fresh_prompt_nafnet_equals_nafnet_then_diverges() -> None:
    """FiLM conv is zero-initialised: a fresh prompt model computes exactly the plain U-Net."""
    x = smooth_images(2, 24, 24, seed=1)
    torch.manual_seed(5)
    plain = build_model(tiny_cfg("nafnet"))
    torch.manual_seed(5)
    prompted = build_model(tiny_cfg("prompt_nafnet"))
    assert isinstance(prompted, PromptNAFNet)
    for model in (plain, prompted):  # same "trained" U-Net weights in both
        torch.manual_seed(6)
        activate_blocks(model)
    torch.testing.assert_close(prompted(x), plain(x), rtol=0, atol=1e-6)
    with torch.no_grad():
        for block in prompted.prompts:
            block.film.weight.normal_(0.0, 0.1)
    assert (prompted(x) - plain(x)).abs().max() > 1e-3


def test_prompt_weights_are_input_dependent_distributions() -> None:
    torch.manual_seed(0)
    model = build_model(tiny_cfg("prompt_nafnet", prompt_len=4))
    clean = smooth_images(1, 32, 32, seed=2)
    noisy = clean + 0.3 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    weights = model.prompt_weights(torch.cat([clean, noisy.clamp(0, 1)]))
    assert [tuple(w.shape) for w in weights] == [(2, 4), (2, 4)]
    for w in weights:
        torch.testing.assert_close(w.sum(dim=1), torch.ones(2))
        assert (w > 0).all()
    assert (weights[0][0] - weights[0][1]).abs().max() > 1e-4
    assert all(len(block._forward_pre_hooks) == 0 for block in model.prompts)


# --------------------------------------------------------------------------- stats


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_model_stats_positive_and_flops_scale_with_area(arch: str) -> None:
    model = build_model(tiny_cfg(arch))
    small = model_stats(model, 64, 64)
    large = model_stats(model, 128, 128)
    assert small["params"] == sum(p.numel() for p in model.parameters()) > 0
    assert small["flops"] > 0
    assert large["params"] == small["params"]
    assert 3.8 < large["flops"] / small["flops"] <= 4.0


def test_model_stats_counts_two_flops_per_multiply_add() -> None:
    width, blocks, side = 8, 2, 16
    model = build_model(tiny_cfg("plain_cnn", width=width, plain_blocks=blocks))
    macs_per_pixel = 27 * width + blocks * 2 * 9 * width * width + 9 * width * 3
    assert model_stats(model, side, side)["flops"] == 2 * macs_per_pixel * side * side


def test_model_stats_rejects_bad_size() -> None:
    with pytest.raises(ValueError, match="got 0x8"):
        model_stats(build_model(tiny_cfg("plain_cnn")), 0, 8)


# --------------------------------------------------------------------------- training


@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_tiny_model_learns_to_denoise(arch: str) -> None:
    torch.manual_seed(0)
    model = build_model(tiny_cfg(arch))
    clean = smooth_images(4, 32, 32, seed=7)
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(8))
    noisy = clean + 0.15 * noise
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(30):
        loss = F.l1_loss(model(noisy), clean)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


# --------------------------------------------------------------------------- padding


@pytest.mark.parametrize("mode", ["reflect", "replicate", "constant"])
@pytest.mark.parametrize(("height", "width", "multiple"), [(37, 53, 8), (16, 16, 4), (1, 2, 8)])
def test_pad_crop_round_trip(mode: str, height: int, width: int, multiple: int) -> None:
    x = torch.rand(2, 3, height, width)
    padded, size = pad_to_multiple(x, multiple, mode=mode)
    assert size == (height, width)
    assert padded.shape[-2] % multiple == 0 and padded.shape[-1] % multiple == 0
    assert padded.shape[-2] - height < multiple and padded.shape[-1] - width < multiple
    assert torch.equal(crop_to(padded, size), x)


def test_pad_reflects_and_falls_back_to_replicate_on_tiny_inputs() -> None:
    x = torch.arange(6.0).reshape(1, 1, 2, 3)
    padded, _ = pad_to_multiple(x, 4)
    assert padded[0, 0, 0].tolist() == [0.0, 1.0, 2.0, 1.0]  # reflect along W (pad 1 < 3)
    assert padded[0, 0, :, 0].tolist() == [0.0, 3.0, 3.0, 3.0]  # replicate along H (pad 2 >= 2)
    tiny = torch.tensor([[[[0.25]]]])
    padded, _ = pad_to_multiple(tiny, 8)  # pad 7 >= side 1: replicate
    assert padded.shape == (1, 1, 8, 8)
    assert torch.all(padded == 0.25)


def test_pad_multiple_one_is_noop() -> None:
    x = torch.rand(1, 3, 5, 7)
    padded, size = pad_to_multiple(x, 1)
    assert padded is x and size == (5, 7)


def test_pad_and_crop_bad_arguments() -> None:
    x = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match="multiple must be >= 1, got 0"):
        pad_to_multiple(x, 0)
    with pytest.raises(ValueError, match=r"mode must be one of .* got 'wrap'"):
        pad_to_multiple(x, 4, mode="wrap")
    with pytest.raises(ValueError, match=r"\(B,C,H,W\).*\(3, 8, 8\)"):
        pad_to_multiple(x[0], 4)
    with pytest.raises(ValueError, match=r"cannot crop \(8, 8\) to \(9, 8\)"):
        crop_to(x, (9, 8))


# --------------------------------------------------------------------------- tiled inference


@pytest.mark.parametrize(("height", "width"), [(50, 70), (64, 64), (33, 100), (17, 23)])
@pytest.mark.parametrize(("tile", "overlap"), [(16, 0), (16, 4), (24, 16)])
def test_tiles_cover_image_and_weights_normalise(
    height: int, width: int, tile: int, overlap: int
) -> None:
    out = restore_tiled(Constant(0.7), torch.rand(1, 3, height, width), tile, overlap)
    assert out.shape == (1, 3, height, width)
    torch.testing.assert_close(out, torch.full_like(out, 0.7), rtol=0, atol=1e-6)


@pytest.mark.parametrize("batch_tiles", [1, 3, 100])
def test_tiled_equals_whole_for_pointwise_model(batch_tiles: int) -> None:
    torch.manual_seed(0)
    model = Recorder()
    image = torch.rand(1, 3, 45, 61)
    whole = model(image).detach()
    model.shapes.clear()
    out = restore_tiled(model, image, tile=16, overlap=4, batch_tiles=batch_tiles)
    assert (out - whole).abs().max() < 1e-4
    # memory bound: never more than batch_tiles full-size tiles per call
    assert all(s[0] <= batch_tiles and s[2:] == (16, 16) for s in model.shapes)
    n_tiles = 4 * 5  # starts 0,12,24,29 along H; 0,12,24,36,45 along W
    assert sum(s[0] for s in model.shapes) == n_tiles
    assert out.dtype == torch.float32 and out.device.type == "cpu"


def test_image_smaller_than_tile_runs_once_whole() -> None:
    model = Recorder()
    # padded to the model's size_multiple first (4 here), as the model pads a whole image
    restore_tiled(model, torch.rand(1, 3, 10, 30), tile=32, overlap=8)
    assert model.shapes == [(1, 3, 12, 32)]
    model.shapes.clear()
    restore_tiled(model, torch.rand(1, 3, 10, 50), tile=32, overlap=8)
    assert model.shapes == [(1, 3, 12, 32), (1, 3, 12, 32)]  # no pooling: one pass


def test_tiled_random_nafnet_close_to_whole_image() -> None:
    """NAFNet sees the whole image through SCA's global pooling, so tiling is never exact.

    Measured over seeds 0-3 (residual magnitude 0.14-0.28): max abs diff 5.1e-3 to 7.3e-3,
    mean 3.6e-4 to 4.9e-4; the tolerances below leave a ~3x margin.
    """
    torch.manual_seed(0)
    model = build_model(tiny_cfg("nafnet")).eval()
    activate_blocks(model)
    gen = torch.Generator().manual_seed(1)
    image = smooth_images(1, 96, 128, seed=0) + 0.05 * torch.randn(1, 3, 96, 128, generator=gen)
    image = image.clamp(0, 1)
    with torch.inference_mode():
        whole = model(image)
    assert (whole - image).abs().mean() > 0.05  # the model does change the image
    diff = (restore_tiled(model, image, tile=48, overlap=16) - whole).abs()
    assert diff.max() < 2e-2
    assert diff.mean() < 2e-3


def test_restore_tiled_bad_arguments() -> None:
    model = Recorder()
    image = torch.rand(1, 3, 40, 40)
    with pytest.raises(ValueError, match="tile must be > overlap, got tile=16, overlap=16"):
        restore_tiled(model, image, 16, 16)
    with pytest.raises(ValueError, match="overlap must be >= 0, got -1"):
        restore_tiled(model, image, 16, -1)
    with pytest.raises(ValueError, match=r"multiple of model\.size_multiple=4, got 18"):
        restore_tiled(model, image, 18, 2)
    with pytest.raises(ValueError, match="batch_tiles must be >= 1, got 0"):
        restore_tiled(model, image, 16, 4, batch_tiles=0)
    with pytest.raises(ValueError, match=r"batch of one.*\(2, 3, 40, 40\)"):
        restore_tiled(model, torch.rand(2, 3, 40, 40), 16, 4)
    with pytest.raises(ValueError, match="tile must be > overlap, got tile=64, overlap=64"):
        restore_image(model, image, tile=64, overlap=64)  # checked even when the image fits


def test_restore_image_whole_or_tiled_and_clamped() -> None:
    image = torch.rand(1, 3, 40, 40)
    for tile in (None, 64, 16):
        out = restore_image(Constant(1.5), image, tile=tile, overlap=4)
        assert out.shape == image.shape and out.dtype == torch.float32
        assert torch.all(out == 1.0)
    model = Recorder()
    restore_image(model, image, tile=None, overlap=0)
    assert model.shapes == [(1, 3, 40, 40)]
    model.shapes.clear()
    restore_image(model, image, tile=16, overlap=4)
    assert len(model.shapes) == 9 and model.shapes[0] == (1, 3, 16, 16)


def test_saved_weights_are_byte_identical_for_identical_tensors(tmp_path) -> None:
    """models/latest must hash the same wherever the same weights are saved (DVC, issue 13)."""
    from girml.models.store import WEIGHTS_FILE, save_model_dir

    cfg = ModelConfig(type="nafnet", width=8, enc_blocks=[1], middle_blocks=1)
    torch.manual_seed(0)
    first = build_model(cfg)
    second = build_model(cfg)  # another instance (other storages), then the same values
    second.load_state_dict({k: v.clone() for k, v in first.state_dict().items()})
    save_model_dir(first, cfg, tmp_path / "a", extra={"train": {"seed": 0}})
    save_model_dir(second, cfg, tmp_path / "b", extra={"train": {"seed": 0}})
    for name in (WEIGHTS_FILE, "config.yaml"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
