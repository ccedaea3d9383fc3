"""Photo-level pooling (girml/core/pooling.py): a tiled photo is restored as the whole photo
would be."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from girml.config import ModelConfig
from girml.core.ensemble import SelfEnsemble, with_self_ensemble
from girml.core.inference import (
    POOLING_PASSES,
    _starts,
    _tile_grid,
    pad_to_multiple,
    restore_image,
    restore_tiled,
)
from girml.core.pooling import (
    PhotoStats,
    current_tile_batch,
    global_pool,
    pools_globally,
    tile_pooling,
    traced_pooling,
)
from girml.models import build_model
from girml.models.blocks import RestorationNet


class ExposureShift(RestorationNet):
    """Pools its input once: ``x - mean(x) + 0.5 * max(x)`` per channel, over what it pools.

    The statistics depend on the input alone, so one statistics pass makes tiling exact.
    """

    size_multiple = 8
    photo_pooling = True

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        mean, peak = global_pool(self, x, with_max=True)
        assert peak is not None
        return (0.5 * peak - mean).expand_as(x)


class Counter(nn.Module):
    """Counts forward calls of the wrapped model (whose size multiple it shares)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.size_multiple = inner.size_multiple
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.inner(x)


def half_dark(height: int, width: int, seed: int = 0) -> torch.Tensor:
    """(1,3,H,W) texture whose left half is dark and right half bright: tiles disagree."""
    gen = torch.Generator().manual_seed(seed)
    image = 0.5 + 0.2 * torch.rand(1, 3, height, width, generator=gen)
    image[..., : width // 2] *= 0.15
    return image.clamp(0, 1)


@pytest.fixture(scope="module")
def nafnet() -> nn.Module:
    """A small NAFNet with max pooling, moved away from identity so its pooling matters."""
    torch.manual_seed(0)
    net = build_model(ModelConfig(width=8, enc_blocks=[1, 1], middle_blocks=1, sca_max=True))
    with torch.no_grad():
        for param in net.parameters():
            param.add_(0.1 * torch.randn_like(param))
    return net.eval()


def local_pooling_tiles(model: nn.Module, image: torch.Tensor, tile: int) -> torch.Tensor:
    """Tiles pooled over themselves (what tiling did before): tile by tile, no overlap."""
    out = torch.empty_like(image)
    with torch.inference_mode():
        for y in _starts(image.shape[-2], tile, tile):
            for x in _starts(image.shape[-1], tile, tile):
                out[..., y : y + tile, x : x + tile] = model(image[..., y : y + tile, x : x + tile])
    return out


def test_one_statistics_pass_makes_input_statistics_exact() -> None:
    model = ExposureShift().eval()
    image = half_dark(70, 150)
    with torch.inference_mode():
        whole = model(image)
    tiled = restore_tiled(model, image, tile=32, overlap=8, pooling_passes=1)
    torch.testing.assert_close(tiled, whole, rtol=0, atol=1e-5)
    # each tile pooling over itself shifts dark and bright tiles differently
    assert (local_pooling_tiles(model, image, 32) - whole).abs().max() > 0.1


def test_statistics_cover_the_padded_photo_once() -> None:
    model = ExposureShift()
    image = half_dark(37, 91)  # not a multiple of the tile nor of size_multiple
    padded, _ = pad_to_multiple(image, model.size_multiple)
    record = PhotoStats()
    # record by hand what one pass adds, then compare with the whole padded image
    grid = _tile_grid(padded, 16, 8, model.size_multiple)
    with torch.inference_mode():
        for chunk in grid.chunks(3):
            batch = torch.cat(
                [padded[..., grid.starts_y[i] : grid.starts_y[i] + 16,
                        grid.starts_x[j] : grid.starts_x[j] + 16] for i, j in chunk]
            )  # fmt: skip
            regions = [(*grid.owned_y[i], *grid.owned_x[j]) for i, j in chunk]
            with tile_pooling(use=None, record=record, regions=regions, tile=16):
                model(batch)
    mean, peak = record.pooled(model, padded)
    torch.testing.assert_close(mean.flatten(), padded.mean(dim=(0, 2, 3)), rtol=0, atol=1e-6)
    torch.testing.assert_close(peak.flatten(), padded.amax(dim=(0, 2, 3)), rtol=0, atol=0)


def test_tiled_nafnet_agrees_with_whole_image_and_across_tile_sizes(nafnet: nn.Module) -> None:
    image = half_dark(96, 192)
    with torch.inference_mode():
        whole = nafnet(image)
    local = (local_pooling_tiles(nafnet, image, 32) - whole).abs().mean()
    tiles = {t: restore_tiled(nafnet, image, tile=t, overlap=16) for t in (32, 64)}
    for out in tiles.values():
        # photo statistics: far closer to the whole image than tiles pooling over themselves
        assert (out - whole).abs().mean() < local / 10  # what is left: conv borders
    assert (tiles[32] - tiles[64]).abs().mean() < 3e-3
    assert local > 0.01  # the fixture's pooling does matter


class Pooled(nn.Module):
    """One pooling layer, pointwise otherwise: ``x * (1 + max(x) - mean(x))``."""

    photo_pooling = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean, peak = global_pool(self, x, with_max=True)
        assert peak is not None
        return x * (1 + peak - mean)


class TwoPools(RestorationNet):
    """Two chained pooling layers and nothing spatial: the second layer's photo statistics
    depend on the first's, so the first statistics pass gets them wrong, the second right."""

    size_multiple = 8

    def __init__(self) -> None:
        super().__init__()
        self.first, self.second = Pooled(), Pooled()

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(self.first(x) - 0.5)


def test_each_statistics_pass_makes_one_more_layer_exact() -> None:
    model = TwoPools().eval()
    image = half_dark(64, 160, seed=1)
    with torch.inference_mode():
        whole = model(image)
    errors = [
        (restore_tiled(model, image, 32, 8, pooling_passes=p) - whole).abs().max()
        for p in (1, 2, 3)
    ]
    assert errors[0] > 1e-3  # the first pass recorded layer 2 behind tile-local layer 1
    assert errors[1] < 1e-6 and errors[2] < 1e-6


def test_only_models_that_pool_pay_for_statistics_passes(nafnet: nn.Module) -> None:
    plain = build_model(ModelConfig(type="plain_cnn", width=8, plain_blocks=2)).eval()
    assert pools_globally(nafnet) and not pools_globally(plain)
    image = half_dark(40, 72)
    for model, passes in ((nafnet, POOLING_PASSES + 1), (plain, 1)):
        counter = Counter(model)
        restore_tiled(counter, image, tile=32, overlap=8)
        n_tiles = len(_starts(40, 32, 24)) * len(_starts(72, 32, 24))
        assert counter.calls == passes * n_tiles
    counter = Counter(nafnet)
    restore_image(counter, image[..., :32, :32], 32, 8)  # one tile: the whole image, once
    assert counter.calls == 1


def test_self_ensemble_is_tiled_view_by_view(nafnet: nn.Module) -> None:
    image = half_dark(48, 96)
    plus = with_self_ensemble(nafnet, 4)
    assert isinstance(plus, SelfEnsemble)
    with torch.inference_mode():
        whole = plus(image)
    tiled = restore_tiled(plus, image, tile=32, overlap=16)
    assert tiled.shape == whole.shape and tiled.is_contiguous()
    assert (tiled - whole).abs().mean() < 2e-3


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_bad_pooling_passes_raise(nafnet: nn.Module, bad: object) -> None:
    with pytest.raises(ValueError, match=rf"pooling_passes must be an int >= 1, got {bad!r}"):
        restore_tiled(nafnet, half_dark(40, 72), 32, 8, pooling_passes=bad)  # type: ignore[arg-type]


def test_photo_stats_errors_name_the_problem() -> None:
    model = ExposureShift()
    stats = PhotoStats()
    with pytest.raises(KeyError, match="no photo statistics recorded for ExposureShift"):
        stats.pooled(model, torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="2 owned regions for a batch of 1 tiles"):
        stats.add(model, torch.zeros(1, 3, 8, 8), [(0, 8, 0, 8)] * 2, tile=8)


def test_outside_tile_pooling_layers_pool_over_their_input() -> None:
    x = torch.rand(2, 3, 8, 8)
    mean, peak = global_pool(nn.Identity(), x, with_max=True)
    assert peak is not None
    torch.testing.assert_close(mean, x.mean(dim=(2, 3), keepdim=True))
    torch.testing.assert_close(peak, x.amax(dim=(2, 3), keepdim=True))
    assert global_pool(nn.Identity(), x, with_max=False)[1] is None


def test_an_exporter_and_an_outside_runtime_reach_the_pooling_hooks() -> None:
    """What girml/artifacts/onnx_*.py build on: :func:`traced_pooling` replaces every pooling
    call of the block; :func:`current_tile_batch` is the batch a runtime must pool for; sums
    added whole (:meth:`PhotoStats.add_sums`) pool as the tiles they came from."""
    x = torch.rand(2, 3, 8, 8)
    layer = nn.Identity()
    with traced_pooling(lambda module, feat, with_max: (feat[:, :, :1, :1], None)):
        assert torch.equal(global_pool(layer, x, with_max=True)[0], x[:, :, :1, :1])
    assert torch.equal(global_pool(layer, x, with_max=False)[0], x.mean(dim=(2, 3), keepdim=True))
    stats, summed = PhotoStats(), PhotoStats()
    regions = [(0, 8, 0, 4), (0, 8, 4, 8)]
    assert current_tile_batch() is None
    with tile_pooling(use=None, record=stats, regions=regions, tile=8):
        batch = current_tile_batch()
        assert batch is not None and batch.record is stats and batch.regions == tuple(regions)
        global_pool(layer, x, with_max=True)
    for k, (_, _, x0, x1) in enumerate(regions):
        part = x[k, :, :, x0:x1]
        summed.add_sums(layer, part.sum(dim=(1, 2)).double(), 32, part.amax(dim=(1, 2)))
    like = torch.empty(1, 3, 1, 1)
    for got, want in zip(summed.pooled(layer, like), stats.pooled(layer, like), strict=True):
        torch.testing.assert_close(got, want)
