"""Tiled inference: batching, memory layout and inference mode of ``restore_tiled``.

Tiling geometry, padding and the tiled-vs-whole comparison are in ``tests/models/test_models.py``.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from girml.cli import app
from girml.config import ModelConfig
from girml.ensemble import SELF_ENSEMBLE_SIZES, SelfEnsemble, view, with_self_ensemble
from girml.imageio import write_png
from girml.inference import (
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
from girml.models import build_model
from girml.pooling import PhotoStats, tile_pooling
from girml.restore import restore_files
from tests.factories import textured_image


@pytest.fixture(scope="module")
def nafnet() -> nn.Module:
    """A small NAFNet moved away from identity, so tiles change and their blending matters."""
    torch.manual_seed(0)
    net = build_model(ModelConfig(width=8, enc_blocks=[1, 1], middle_blocks=1))
    with torch.no_grad():
        for param in net.parameters():
            param.add_(0.05 * torch.randn_like(param))
    return net.eval()


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    """(1,3,75,101): not a multiple of the tile, so the last tiles shift inward on both axes."""
    return torch.from_numpy(textured_image(3, 75, 101)).permute(2, 0, 1)[None].float() / 255


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


class _Ramp(nn.Module):
    """Adds a left-to-right ramp: not flip-equivariant, so the views disagree."""

    size_multiple = 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.linspace(0, 0.2, x.shape[-1])


@pytest.mark.parametrize("n", SELF_ENSEMBLE_SIZES)
def test_self_ensemble_maps_each_view_back(n: int, image: torch.Tensor) -> None:
    identity = with_self_ensemble(nn.Identity(), n)
    assert torch.allclose(identity(image), image)  # every view undone exactly
    ramp = with_self_ensemble(_Ramp(), n)
    out = ramp(torch.zeros(1, 3, 6, 8))
    if n == 1:
        assert ramp.__class__ is _Ramp and out[0, 0, 0, -1] == pytest.approx(0.2)
    else:  # the ramp and its mirror average to a constant: what the views agree on survives
        assert torch.allclose(out, torch.full_like(out, 0.1))


def test_self_ensemble_averages_a_real_network_and_tiles_like_it(
    nafnet: nn.Module, image: torch.Tensor
) -> None:
    plus = with_self_ensemble(nafnet, 8)
    assert isinstance(plus, SelfEnsemble) and not plus.training
    assert plus.size_multiple == nafnet.size_multiple
    whole = restore_image(plus, image, None, 0)
    assert not torch.allclose(whole, restore_image(nafnet, image, None, 0))
    tiled = restore_image(plus, image, 64, 16)  # the tiled path reads size_multiple
    assert tiled.shape == whole.shape and (tiled - whole).abs().mean() < 0.02
    with pytest.raises(ValueError, match=r"one of \(1, 2, 4, 8\), got 3"):
        with_self_ensemble(nafnet, 3)


def test_restore_cli_takes_a_self_ensemble_size(tmp_path: Path, nafnet: nn.Module) -> None:
    from girml.models.store import save_model_dir

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


def test_self_ensemble_batches_views_of_one_shape(nafnet: nn.Module) -> None:
    probe = Probe(nafnet)
    plus = SelfEnsemble(probe, 8)
    for shape, batches in (((1, 3, 32, 32), [8]), ((2, 3, 24, 40), [8, 8])):
        x = torch.rand(shape)
        probe.calls.clear()
        with torch.inference_mode():
            out = plus(x)
            one_at_a_time = sum(
                view(nafnet(view(x, t, forward=True)), t, forward=False) for t in range(8)
            )
        assert [size for size, _, _ in probe.calls] == batches  # 4 views x 2 images per batch
        torch.testing.assert_close(out, one_at_a_time / 8, rtol=0, atol=1e-5)
    probe.calls.clear()
    with torch.inference_mode():
        plus(torch.rand(1, 3, 512, 512))  # too big to batch: one view at a time
    assert [size for size, _, _ in probe.calls] == [1] * 8
