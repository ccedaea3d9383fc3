"""Inference helpers (girml/core/inference.py): padding to a multiple and cropping back, the tiling
geometry, the tiled-vs-whole comparison, and the batching, memory layout and inference mode of
``restore_tiled``."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from girml.cli import app
from girml.config import ModelConfig
from girml.core.imageio import write_png
from girml.core.inference import (
    MAX_DEFAULT_WORKERS,
    POOLING_PASSES,
    _owned,
    _ramp,
    _starts,
    crop_to,
    pad_to_multiple,
    restore_image,
    restore_tiled,
)
from girml.core.pooling import PhotoStats, tile_pooling
from girml.models import build_model
from girml.restore import restore_files
from tests.factories import textured_image
from tests.models.common import activate_blocks, smooth_images, tiny_cfg


class Probe(nn.Module):
    """Wraps a model and records, per call, the input layout and whether inference mode was on."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.size_multiple = getattr(inner, "size_multiple", 1)
        self.calls: list[tuple[int, bool, bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        self.calls.append((x.shape[0], channels_last, torch.is_inference_mode_enabled()))
        return self.inner(x)


def reference_tiled(model: nn.Module, image: torch.Tensor, tile: int, overlap: int) -> torch.Tensor:
    """The plain algorithm: the image padded to the model's multiple, one contiguous tile at a
    time at origins on that multiple, the pooling statistics passes, then the output pass
    summed with its weights into full buffers."""
    multiple = model.size_multiple
    padded, size = pad_to_multiple(image, multiple)
    _, channels, height, width = padded.shape
    stride = (tile - overlap) // multiple * multiple
    starts_y, starts_x = _starts(height, tile, stride), _starts(width, tile, stride)
    owned_y, owned_x = (
        _owned(starts_y, tile, height, multiple),
        _owned(starts_x, tile, width, multiple),
    )

    def run(use: PhotoStats | None, record: PhotoStats | None) -> dict:
        preds = {}
        for i, y in enumerate(starts_y):
            for j, x in enumerate(starts_x):
                region = [(*owned_y[i], *owned_x[j])]
                with tile_pooling(use=use, record=record, regions=region, tile=tile):
                    preds[y, x] = model(padded[..., y : y + tile, x : x + tile].contiguous())
        return preds

    window = _ramp(tile, tile - stride)[:, None] * _ramp(tile, tile - stride)[None, :]
    output = torch.zeros(1, channels, height, width)
    weight = torch.zeros(1, 1, height, width)
    with torch.no_grad():
        stats = None
        for _ in range(POOLING_PASSES):
            record = PhotoStats()
            run(stats, record)
            stats = record
        for (y, x), pred in run(stats, None).items():
            output[..., y : y + tile, x : x + tile] += pred[0] * window
            weight[..., y : y + tile, x : x + tile] += window
    return crop_to(output / weight, size)


def test_matches_plain_one_tile_at_a_time_reference(nafnet: nn.Module, image: torch.Tensor) -> None:
    expected = reference_tiled(nafnet, image, tile=32, overlap=8)
    assert (expected - image).abs().mean() > 0.01  # the model does change the image
    for channels_last in (False, True):
        out = restore_tiled(nafnet, image, 32, 8, channels_last=channels_last)
        torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("batch_tiles", [2, 5, 12, 1000])
def test_batched_tiles_equal_one_at_a_time(
    nafnet: nn.Module, image: torch.Tensor, batch_tiles: int
) -> None:
    probe = Probe(nafnet)
    single = restore_tiled(probe, image, 32, 8, batch_tiles=1)
    passes = POOLING_PASSES + 1  # statistics passes, then the output pass
    n_tiles = len(probe.calls) // passes
    assert n_tiles == 3 * 4 and all(size == 1 for size, _, _ in probe.calls)
    probe.calls.clear()
    batched = restore_tiled(probe, image, 32, 8, batch_tiles=batch_tiles)
    sizes = [size for size, _, _ in probe.calls]
    assert sum(sizes) == passes * n_tiles and max(sizes) == min(batch_tiles, n_tiles)
    torch.testing.assert_close(batched, single, rtol=0, atol=1e-5)


def test_channels_last_path_equals_contiguous(nafnet: nn.Module, image: torch.Tensor) -> None:
    probe = Probe(nafnet)
    contiguous = restore_image(probe, image, 32, 8, batch_tiles=3, channels_last=False)
    assert probe.calls and not any(cl for _, cl, _ in probe.calls)
    probe.calls.clear()
    channels_last = restore_image(probe, image, 32, 8, batch_tiles=3, channels_last=True)
    assert probe.calls and all(cl for _, cl, _ in probe.calls)
    torch.testing.assert_close(channels_last, contiguous, rtol=0, atol=1e-5)
    assert channels_last.is_contiguous()  # the layout never leaks to the caller

    probe.calls.clear()
    restore_image(probe, image, 32, 8)  # default on the CPU: channels_last
    assert all(cl for _, cl, _ in probe.calls)
    probe.calls.clear()
    whole = restore_image(probe, image, None, 0, channels_last=True)
    assert probe.calls == [(1, True, True)] and whole.is_contiguous()
    expected = restore_image(nafnet, image, None, 0, channels_last=False)
    torch.testing.assert_close(whole, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("tile", [32, None])
def test_inference_mode_keeps_no_graph_and_leaves_model_unchanged(
    nafnet: nn.Module, image: torch.Tensor, tile: int | None
) -> None:
    probe = Probe(nafnet)
    before = {name: p.detach().clone() for name, p in nafnet.named_parameters()}
    formats = {name: p.is_contiguous() for name, p in nafnet.named_parameters()}
    assert all(p.requires_grad for p in nafnet.parameters())
    source = image.clone().requires_grad_(True)

    out = restore_image(probe, source, tile, 8, channels_last=True)

    assert probe.calls and all(inference for _, _, inference in probe.calls)
    assert not out.requires_grad and out.grad_fn is None
    assert not nafnet.training
    for name, param in nafnet.named_parameters():
        assert torch.equal(param, before[name]), name
        assert param.is_contiguous() == formats[name], name  # not converted to channels_last
        assert param.grad is None
    assert source.grad is None


class ThreadProbe(nn.Module):
    """Records the thread and torch's thread count of every forward call."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.size_multiple = inner.size_multiple  # the tile grid follows it
        self.calls: list[tuple[str, int]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append((threading.current_thread().name, torch.get_num_threads()))
        return self.inner(x)


@pytest.mark.parametrize(("workers", "batch_tiles"), [(2, 1), (3, 2), (50, 1)])
def test_tile_workers_run_tiles_at_once_with_the_same_result(
    nafnet: nn.Module, image: torch.Tensor, workers: int, batch_tiles: int
) -> None:
    expected = restore_tiled(nafnet, image, 32, 8, workers=1)
    threads = torch.get_num_threads()
    probe = ThreadProbe(nafnet)
    out = restore_tiled(probe, image, 32, 8, batch_tiles=batch_tiles, workers=workers)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)
    names = {name for name, _ in probe.calls}
    assert all(name.startswith("tile") for name in names) and len(names) > 1
    assert {n for _, n in probe.calls} == {1}  # one torch thread per worker
    assert torch.get_num_threads() == threads  # and torch's own count back afterwards
    probe.calls.clear()
    restore_tiled(probe, image, 32, 8, workers=1)
    assert {name for name, _ in probe.calls} == {threading.current_thread().name}


def test_default_workers_are_capped_and_share_torch_threads(
    nafnet: nn.Module, image: torch.Tensor
) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(8)  # a bigger machine's default
    try:
        probe = ThreadProbe(nafnet)
        restore_tiled(probe, image, 32, 8)  # 12 tiles
        assert 1 < len({name for name, _ in probe.calls}) <= MAX_DEFAULT_WORKERS
        assert {n for _, n in probe.calls} == {8 // MAX_DEFAULT_WORKERS}
        assert torch.get_num_threads() == 8
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("bad", [0, -2, 1.5, True])
def test_bad_workers_raise(nafnet: nn.Module, image: torch.Tensor, bad: object) -> None:
    with pytest.raises(ValueError, match=rf"workers must be .*got {bad!r}"):
        restore_tiled(nafnet, image, 32, 8, workers=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0, -3, 1.5, True])
def test_bad_batch_tiles_raise(nafnet: nn.Module, image: torch.Tensor, bad: object) -> None:
    with pytest.raises(ValueError, match=rf"batch_tiles must be .*got {bad!r}"):
        restore_tiled(nafnet, image, 32, 8, batch_tiles=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch_tiles must be"):  # checked even if it fits
        restore_image(nafnet, image, 128, 8, batch_tiles=bad)  # type: ignore[arg-type]


def test_restore_files_and_cli_pass_batch_tiles(
    tmp_path: Path, nafnet: nn.Module, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_png(tmp_path / "a.png", textured_image(0, 70, 90))
    probe = Probe(nafnet)
    report = restore_files([tmp_path / "a.png"], tmp_path / "out", probe, 32, 8, batch_tiles=4)
    assert report.ok and [size for size, _, _ in probe.calls] == [4, 4, 4] * (POOLING_PASSES + 1)
    with pytest.raises(ValueError, match="batch_tiles must be >= 1, got 0"):
        restore_files([tmp_path / "a.png"], tmp_path / "out", nafnet, 32, 8, batch_tiles=0)

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["restore", "a.png", "-o", "o", "--batch-tiles", "0"])
    assert result.exit_code == 2 and "batch-tiles" in result.output  # a usage error, no model load


# --------------------------------------------------------------------------- self-ensemble


def test_restore_cli_takes_a_self_ensemble_size(tmp_path: Path, nafnet: nn.Module) -> None:
    from girml.artifacts.store import save_model_dir

    model_dir = save_model_dir(
        nafnet, ModelConfig(width=8, enc_blocks=[1, 1], middle_blocks=1), tmp_path / "m"
    )
    write_png(tmp_path / "in" / "a.png", textured_image(1, 40, 48))
    args = ["restore", str(tmp_path / "in"), "--model", str(model_dir), "--tile", "0"]
    bad = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "x"), "--self-ensemble", "3"])
    assert bad.exit_code == 2 and "--self-ensemble must be one of (1, 2, 4, 8), got 3" in bad.output
    assert not (tmp_path / "x").exists()
    outs = {}
    for n in (1, 8):
        res = CliRunner().invoke(
            app, [*args, "-o", str(tmp_path / f"o{n}"), "--self-ensemble", str(n)]
        )
        assert res.exit_code == 0, res.output
        assert ("self-ensemble x8" in res.output) == (n == 8)
        outs[n] = (tmp_path / f"o{n}" / "a.png").read_bytes()
    assert outs[1] != outs[8]


# --------------------------------------------------------------------------- padding


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


# --------------------------------------------------------------------------- tiling geometry


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
