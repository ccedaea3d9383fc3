"""Shared inference helpers: size padding, whole-image and tiled restoration.

Every model and every stage that runs a model goes through these functions (the idea of SwinIR's
``test()``), so padding and tiling behave the same in training-time validation, benchmarking and
the ``restore`` command.
"""

from __future__ import annotations

import functools
import itertools
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from girml.core.ensemble import SelfEnsemble, view
from girml.core.pooling import PhotoStats, pools_globally, tile_pooling

PAD_MODES = ("reflect", "replicate", "constant")
# Default tile workers on the CPU at most: memory grows with the tiles in flight.
MAX_DEFAULT_WORKERS = 4
# Statistics passes of tiled inference for a model that pools over its input (girml.core.pooling):
# BENCHMARKS.md, "Whole photos: tiling", measures 1-3 against whole-image inference.
POOLING_PASSES = 3


def _check_batch(x: torch.Tensor, name: str = "image") -> None:
    if x.ndim != 4:
        raise ValueError(f"{name} must be a (B,C,H,W) tensor, got shape {tuple(x.shape)}")


def pad_to_multiple(
    x: torch.Tensor, multiple: int, mode: str = "reflect"
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad the bottom and right of ``x`` so that H and W become multiples of ``multiple``.

    Reflect padding needs the pad to be smaller than the side; on an axis where it is not (tiny
    images) the function falls back to replicate padding.

    Args:
        x: (B,C,H,W) tensor of any float dtype.
        multiple: target divisor, >= 1 (1 returns ``x`` unchanged).
        mode: "reflect", "replicate" or "constant" (zeros).

    Returns:
        The padded (B,C,H',W') tensor and the original (H, W), to pass to :func:`crop_to`.
    """
    _check_batch(x, "x")
    if multiple < 1:
        raise ValueError(f"multiple must be >= 1, got {multiple}")
    if mode not in PAD_MODES:
        raise ValueError(f"mode must be one of {PAD_MODES}, got {mode!r}")
    height, width = x.shape[-2:]
    pad_h = -height % multiple
    pad_w = -width % multiple
    if pad_h == 0 and pad_w == 0:
        return x, (height, width)
    if mode == "reflect" and (pad_h >= height or pad_w >= width):
        # Pad each axis on its own so only the axis that is too short loses reflection.
        if pad_w:
            x = F.pad(x, (0, pad_w, 0, 0), mode="reflect" if pad_w < width else "replicate")
        if pad_h:
            x = F.pad(x, (0, 0, 0, pad_h), mode="reflect" if pad_h < height else "replicate")
        return x, (height, width)
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode), (height, width)


def crop_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Crop the top-left (H, W) of a (B,C,H',W') tensor; the inverse of :func:`pad_to_multiple`."""
    _check_batch(x, "x")
    height, width = size
    if not (0 < height <= x.shape[-2] and 0 < width <= x.shape[-1]):
        raise ValueError(f"cannot crop {tuple(x.shape[-2:])} to {(height, width)}")
    return x[..., :height, :width]


def model_device(model: nn.Module, default: torch.device | str = "cpu") -> torch.device:
    """The device of ``model``'s first parameter, or ``default`` for a parameter-free model."""
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device(default)


def _check_tiling(model: nn.Module, tile: int, overlap: int, batch_tiles: int) -> None:
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0, got {overlap}")
    if tile <= overlap:
        raise ValueError(f"tile must be > overlap, got tile={tile}, overlap={overlap}")
    if isinstance(batch_tiles, bool) or not isinstance(batch_tiles, int):
        raise ValueError(f"batch_tiles must be an int >= 1, got {batch_tiles!r}")
    if batch_tiles < 1:
        raise ValueError(f"batch_tiles must be >= 1, got {batch_tiles}")
    multiple = int(getattr(model, "size_multiple", 1))
    if tile % multiple:
        raise ValueError(f"tile must be a multiple of model.size_multiple={multiple}, got {tile}")


def _starts(length: int, tile: int, stride: int) -> list[int]:
    """Tile origins along one axis; the last one is shifted inward to end at ``length``."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def _ramp(length: int, overlap: int) -> torch.Tensor:
    """1-D blending window: smoothstep rise over ``overlap`` pixels at both ends, 1 inside.

    Strictly positive everywhere, and two windows overlapping by exactly ``overlap`` sum to 1 in
    the overlap. The tiny weight at a tile's edge suppresses the edge pixels, where a tile's
    prediction differs most from whole-image inference.
    """
    if overlap == 0:
        return torch.ones(length)
    i = torch.arange(length, dtype=torch.float64)
    t = torch.minimum(i + 0.5, length - i - 0.5).div(overlap).clamp(max=1.0)
    return (t * t * (3 - 2 * t)).float()


def _memory_format(channels_last: bool | None, run_on: torch.device) -> torch.memory_format:
    """Layout of the model inputs: ``None`` picks channels_last on the CPU only.

    On the 2-core CPU, channels_last tiles take the default NAFNet 14-28% less CPU time
    (BENCHMARKS.md, "Restore on a 12-megapixel photo"); other devices keep the contiguous
    layout, the only one measured there.
    """
    if channels_last is None:
        channels_last = run_on.type == "cpu"
    return torch.channels_last if channels_last else torch.contiguous_format


def _weight_sum(length: int, tile: int, starts: list[int], ramp: torch.Tensor) -> torch.Tensor:
    """Sum over ``starts`` of ``ramp`` placed at each start: one axis of the blending weight."""
    total = torch.zeros(length)
    for start in starts:
        total[start : start + tile] += ramp
    return total


def restore_tiled(
    model: nn.Module,
    image: torch.Tensor,
    tile: int,
    overlap: int,
    device: torch.device | str | None = None,
    batch_tiles: int = 1,
    channels_last: bool | None = None,
    workers: int | None = None,
    pooling_passes: int = POOLING_PASSES,
) -> torch.Tensor:
    """Restore a large image tile by tile with bounded memory, as if it were restored whole.

    The image is padded (reflect) to a multiple of the model's ``size_multiple``, as the model
    pads a whole image, and cut into overlapping ``tile`` x ``tile`` windows whose origins are
    multiples of it (the last ones shifted inward so all are full size), so a tile's features
    lie on the whole image's grid. Tiles run through ``model`` under ``torch.inference_mode()``,
    ``batch_tiles`` at a time, and are blended on the CPU with a separable smoothstep window
    (:func:`_ramp`, :func:`_blend_tiles`). An image no larger than the tile is run once, whole.

    A model that pools over its input (:func:`girml.core.pooling.pools_globally`) pools over the
    whole photo instead of each tile: ``pooling_passes`` passes over the tiles record the
    photo's statistics (:mod:`girml.core.pooling`), then the output pass uses them. A
    :class:`SelfEnsemble` is restored view by view, each view a whole photo. The model is not
    modified (its train/eval mode is left as the caller set it).

    Args:
        model: maps (N,C,h,w) -> (N,C,h,w) for any h, w; if it has ``size_multiple``,
            ``tile`` must be a multiple of it.
        image: (1,C,H,W) float tensor, on any device.
        tile: tile side in pixels, > ``overlap``.
        overlap: pixels shared by neighbouring tiles, >= 0 (rounded up so that the tile stride
            is a multiple of ``size_multiple``).
        device: where tiles are run; defaults to the model's parameter device.
        batch_tiles: tiles per forward pass, >= 1. More tiles per pass help on GPUs; on the
            CPU one tile at a time was fastest (bigger passes fall out of the caches).
        channels_last: feed the model channels_last tiles; None (default) does so on the CPU,
            where it is faster, and not elsewhere. The result is the same up to float rounding.
        workers: threads that run tile batches at once, sharing torch's threads (blending stays
            in the calling thread, in tile order). None (default): on the CPU torch's thread
            count, at most :data:`MAX_DEFAULT_WORKERS`, since cores working on separate tiles
            beat cores sharing each operation (BENCHMARKS.md, "Restore on a 12-megapixel
            photo"); 1 on other devices. The result does not depend on it.
        pooling_passes: statistics passes before the output pass, >= 1, for a model that
            pools (each pass costs as much as the output pass).

    Returns:
        (1,C,H,W) float32 contiguous tensor on the CPU (not clamped).
    """
    _check_batch(image)
    if image.shape[0] != 1:
        raise ValueError(f"restore_tiled expects a batch of one, got shape {tuple(image.shape)}")
    _check_tiling(model, tile, overlap, batch_tiles)
    if (
        isinstance(pooling_passes, bool)
        or not isinstance(pooling_passes, int)
        or pooling_passes < 1
    ):
        raise ValueError(f"pooling_passes must be an int >= 1, got {pooling_passes!r}")
    if isinstance(model, SelfEnsemble):  # each view is a photo of its own statistics
        tiled = functools.partial(
            restore_tiled,
            model.net,
            tile=tile,
            overlap=overlap,
            device=device,
            batch_tiles=batch_tiles,
            channels_last=channels_last,
            workers=workers,
            pooling_passes=pooling_passes,
        )
        views = (
            view(tiled(view(image, t, forward=True)), t, forward=False) for t in range(model.n)
        )
        return (sum(views) / model.n).contiguous()
    run_on, memory_format = _placement(model, image, device, channels_last)
    multiple = int(getattr(model, "size_multiple", 1))
    padded, size = pad_to_multiple(image, multiple)
    grid = _tile_grid(padded, tile, overlap, multiple)
    chunks = grid.chunks(batch_tiles)
    workers = _tile_workers(workers, run_on, len(chunks))
    predict = functools.partial(_predict_tiles, model, padded, grid, run_on, memory_format)
    stats = None
    if len(grid.starts_y) * len(grid.starts_x) > 1 and pools_globally(model):
        for _ in range(pooling_passes):
            record = PhotoStats()
            _run_tiles(chunks, functools.partial(predict, use=stats, record=record), workers)
            stats = record
    output = _blend_tiles(grid, chunks, functools.partial(predict, use=stats), workers)
    return crop_to(output, size).contiguous()


@dataclass(frozen=True)
class _TileGrid:
    """Where the tiles of one (1,C,H,W) image lie, and their per-axis blending windows.

    Attributes:
        channels, height, width: the image's C, H and W.
        tile_h, tile_w: the tile's size (the tile side, or the image's side where smaller).
        starts_y, starts_x: tile origins along each axis (:func:`_starts`).
        owned_y, owned_x: each tile's owned (start, end) along each axis, in tile pixels: the
            owned spans partition the image (:func:`_owned`).
        ramp_y, ramp_x: (tile_h,) and (tile_w,) float32 windows (:func:`_ramp`).
    """

    channels: int
    height: int
    width: int
    tile_h: int
    tile_w: int
    starts_y: list[int]
    starts_x: list[int]
    owned_y: list[tuple[int, int]]
    owned_x: list[tuple[int, int]]
    ramp_y: torch.Tensor
    ramp_x: torch.Tensor

    def chunks(self, size: int) -> list[list[tuple[int, int]]]:
        """The (i, j) indices of the tiles (row ``i`` of ``starts_y``, column ``j`` of
        ``starts_x``), row by row, in batches of ``size`` (the last may be smaller)."""
        coords = [(i, j) for i in range(len(self.starts_y)) for j in range(len(self.starts_x))]
        return [coords[k : k + size] for k in range(0, len(coords), size)]


def _tile_grid(image: torch.Tensor, tile: int, overlap: int, multiple: int = 1) -> _TileGrid:
    """The tiles of ``tile`` pixels, at least ``overlap`` of them shared, that cover (1,C,H,W)
    ``image``; the stride is a multiple of ``multiple`` (H, W and ``tile`` should be too)."""
    _, channels, height, width = image.shape
    tile_h, tile_w = min(tile, height), min(tile, width)
    stride = max(multiple, (tile - overlap) // multiple * multiple)
    starts_y, starts_x = _starts(height, tile, stride), _starts(width, tile, stride)
    return _TileGrid(
        channels=channels,
        height=height,
        width=width,
        tile_h=tile_h,
        tile_w=tile_w,
        starts_y=starts_y,
        starts_x=starts_x,
        owned_y=_owned(starts_y, tile_h, height, multiple),
        owned_x=_owned(starts_x, tile_w, width, multiple),
        ramp_y=_ramp(tile_h, tile - stride),
        ramp_x=_ramp(tile_w, tile - stride),
    )


def _owned(starts: list[int], tile: int, length: int, multiple: int) -> list[tuple[int, int]]:
    """Each tile's owned span along one axis, relative to its origin: neighbours split their
    overlap in the middle (rounded down to a multiple of ``multiple``), so the spans partition
    ``[0, length)`` and each lies ``overlap / 2`` away from the tile's cut edges."""
    bounds = [0]
    for before, after in itertools.pairwise(starts):
        middle = (after + before + tile) // 2 // multiple * multiple
        bounds.append(min(max(middle, after), before + tile))
    bounds.append(length)
    return [(bounds[k] - start, bounds[k + 1] - start) for k, start in enumerate(starts)]


def _placement(
    model: nn.Module,
    image: torch.Tensor,
    device: torch.device | str | None,
    channels_last: bool | None,
) -> tuple[torch.device, torch.memory_format]:
    """Where the model runs (``device``, else its parameters' device, else ``image``'s) and the
    layout of its inputs (:func:`_memory_format`)."""
    run_on = torch.device(device) if device is not None else model_device(model, image.device)
    return run_on, _memory_format(channels_last, run_on)


def _predict_tiles(
    model: nn.Module,
    image: torch.Tensor,
    grid: _TileGrid,
    run_on: torch.device,
    memory_format: torch.memory_format,
    chunk: list[tuple[int, int]],
    use: PhotoStats | None = None,
    record: PhotoStats | None = None,
) -> torch.Tensor:
    """The model's (N,C,tile_h,tile_w) float32 CPU outputs for the tiles ``chunk`` indexes, run
    as one batch of ``memory_format`` on ``run_on``; its pooling layers use the photo's
    statistics ``use`` and add to ``record`` (:func:`girml.core.pooling.tile_pooling`). Safe to call
    from worker threads."""
    with torch.inference_mode():  # thread-local: entered in each worker thread
        batch = torch.empty(
            (len(chunk), grid.channels, grid.tile_h, grid.tile_w),
            dtype=image.dtype,
            device=image.device,
            memory_format=memory_format,
        )
        for k, (i, j) in enumerate(chunk):
            y, x = grid.starts_y[i], grid.starts_x[j]
            batch[k] = image[0, :, y : y + grid.tile_h, x : x + grid.tile_w]
        regions = [(*grid.owned_y[i], *grid.owned_x[j]) for i, j in chunk]
        with tile_pooling(use=use, record=record, regions=regions, tile=grid.tile_h):
            return model(batch.to(run_on)).float().cpu()


def _run_tiles(
    chunks: list[list[tuple[int, int]]],
    predict: Callable[[list[tuple[int, int]]], torch.Tensor],
    workers: int,
) -> None:
    """Run ``predict`` on every chunk on ``workers`` threads for its side effects (a pooling
    statistics pass), keeping no output."""
    shared = max(1, torch.get_num_threads() // workers) if workers > 1 else 0
    with (
        torch.inference_mode(),
        torch_threads(shared),
        ThreadPoolExecutor(workers, thread_name_prefix="tile") as pool,
    ):
        for _ in _in_order(pool, predict, chunks, workers):
            pass


def _blend_tiles(
    grid: _TileGrid,
    chunks: list[list[tuple[int, int]]],
    predict: Callable[[list[tuple[int, int]]], torch.Tensor],
    workers: int,
) -> torch.Tensor:
    """Predict every chunk of tiles on ``workers`` threads and blend them into the image.

    Each prediction is multiplied by the window (the outer product of the grid's ramps) and
    added, in tile order, into a preallocated float32 output, which is divided at the end by the
    summed window. The tiles form a grid, so that sum is the outer product of two per-axis sums
    and no full-size weight buffer is kept.

    Returns:
        (1,C,H,W) float32 contiguous tensor on the CPU.
    """
    window = grid.ramp_y[:, None] * grid.ramp_x[None, :]
    output = torch.zeros(1, grid.channels, grid.height, grid.width)
    tile_h, tile_w = grid.tile_h, grid.tile_w
    # several workers split torch's threads among them (one each on a 2-core machine)
    shared = max(1, torch.get_num_threads() // workers) if workers > 1 else 0
    with torch.inference_mode(), torch_threads(shared):
        with ThreadPoolExecutor(workers, thread_name_prefix="tile") as pool:
            for chunk, pred in zip(chunks, _in_order(pool, predict, chunks, workers), strict=True):
                for k, (i, j) in enumerate(chunk):
                    y, x = grid.starts_y[i], grid.starts_x[j]
                    output[0, :, y : y + tile_h, x : x + tile_w].addcmul_(pred[k], window)
        output.div_(_weight_sum(grid.height, tile_h, grid.starts_y, grid.ramp_y)[:, None])
        output.div_(_weight_sum(grid.width, tile_w, grid.starts_x, grid.ramp_x))
    return output


def _in_order(
    pool: ThreadPoolExecutor,
    fn: Callable[[list[tuple[int, int]]], torch.Tensor],
    chunks: list[list[tuple[int, int]]],
    workers: int,
) -> Iterator[torch.Tensor]:
    """``fn`` of each chunk, in order, computed by ``pool`` at most ``2 * workers`` ahead (torch
    ops release the GIL, so the workers' tiles run on separate cores; memory stays bounded)."""
    if workers == 1:
        yield from map(fn, chunks)
        return
    pending: deque[Future[torch.Tensor]] = deque()
    upcoming = iter(chunks)
    try:
        for chunk in upcoming:
            pending.append(pool.submit(fn, chunk))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()


def _tile_workers(workers: int | None, run_on: torch.device, n_chunks: int) -> int:
    """How many threads run tiles: ``workers``, or by default (None) on the CPU torch's thread
    count up to :data:`MAX_DEFAULT_WORKERS` (each tile in flight holds its activations), and 1
    elsewhere; never more than there are tile batches."""
    if workers is None:
        workers = min(torch.get_num_threads(), MAX_DEFAULT_WORKERS) if run_on.type == "cpu" else 1
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int >= 1, got {workers!r}")
    return max(1, min(workers, n_chunks))


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """torch's intra-op thread count set to ``threads`` for the block (0: left as it is), then
    restored; used by tile workers here and by ``train.num_threads``."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def restore_image(
    model: nn.Module,
    image: torch.Tensor,
    tile: int | None,
    overlap: int,
    device: torch.device | str | None = None,
    batch_tiles: int = 1,
    channels_last: bool | None = None,
    workers: int | None = None,
) -> torch.Tensor:
    """Restore an image whole when ``tile`` is None or it fits in one tile, else tiled.

    Both ways run under ``torch.inference_mode()`` and leave the model unchanged.

    Args:
        model: restoration network (N,C,h,w) -> (N,C,h,w).
        image: (B,C,H,W) float tensor in [0,1]; B must be 1 when tiling is needed.
        tile: tile side in pixels, or None for whole-image inference.
        overlap: tile overlap in pixels (ignored for whole-image inference).
        device: where the model runs; defaults to the model's parameter device.
        batch_tiles: tiles per forward pass when tiling, >= 1.
        channels_last: feed the model channels_last inputs; None (default): on the CPU only
            (see :func:`restore_tiled`).
        workers: tile workers when tiling (see :func:`restore_tiled`).

    Returns:
        (B,C,H,W) float32 contiguous tensor on the CPU, clamped to [0,1].
    """
    _check_batch(image)
    if tile is not None:
        _check_tiling(model, tile, overlap, batch_tiles)
    if tile is not None and max(image.shape[-2:]) > tile:
        out = restore_tiled(
            model, image, tile, overlap, device, batch_tiles, channels_last, workers
        )
        return out.clamp_(0.0, 1.0)  # a fresh buffer, safe to clamp in place
    run_on, memory_format = _placement(model, image, device, channels_last)
    with torch.inference_mode():
        out = model(image.to(run_on, memory_format=memory_format)).float().cpu()
    # not in place: the output may share memory with ``image`` (an identity model)
    return out.clamp(0.0, 1.0).contiguous()
