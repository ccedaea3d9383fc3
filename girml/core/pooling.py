"""Photo-level pooling: the statistics a network pools come from the whole photo, however it is
tiled.

NAFNet's simplified channel attention (:class:`girml.models.nafnet.SCA`) and the prompt
weights of :class:`girml.models.prompt.PromptNAFNet` pool each feature over their whole input.
Exposure, haze and noise level are properties of the photo, so when a photo is restored tile by
tile each tile must not decide them from its own pixels (TLC, Chu et al., ECCV 2022, measured
what that train/test mismatch costs; house style rule 12). Every layer that pools calls
:func:`global_pool`. Outside a :func:`tile_pooling` block it pools over its input, as in
training. Inside one (set by :func:`girml.core.inference.restore_tiled` around each batch of
tiles) it can

- **record**: add its input's sum, pixel count and maximum over each tile's *owned* region to a
  :class:`PhotoStats` (owned regions partition the photo, so the sums add up to the whole
  photo's, away from the conv border effects the tile overlap absorbs), and
- **use**: return the photo's mean and maximum from a :class:`PhotoStats` instead of the tile's.

The whole-photo statistics of a deep layer depend on the statistics used by the layers before
it, so :func:`girml.core.inference.restore_tiled` iterates: a first pass over the tiles records with
each tile pooling over itself, each further pass records while using the previous pass's
statistics, and the last pass (the one whose output is kept) uses the last statistics. Each
pass makes one more layer exact; in practice two passes agree with whole-image inference to a
fraction of a grey level (BENCHMARKS.md, "Whole photos: tiling").
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

# (y0, y1, x0, x1): a tile's owned region in the tile's own pixel coordinates
Region = tuple[int, int, int, int]
# (layer, x, with_max) -> (mean, maximum or None): what :func:`traced_pooling` puts in place
PoolFn = Callable[[nn.Module, torch.Tensor, bool], tuple[torch.Tensor, torch.Tensor | None]]


@dataclass
class _LayerStats:
    total: torch.Tensor  # (C,) float64 sum of the layer's input over the owned pixels
    count: int  # owned pixels summed
    maximum: torch.Tensor | None  # (C,) float32 maximum over them, or None (not pooled)


class PhotoStats:
    """Pooled statistics of every pooling layer over one whole photo (thread-safe).

    Keyed by the pooling module itself, so one object serves one network; the tile workers of
    :func:`girml.core.inference.restore_tiled` add to it from several threads.
    """

    def __init__(self) -> None:
        self._layers: dict[nn.Module, _LayerStats] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._layers)

    def add(self, layer: nn.Module, x: torch.Tensor, regions: Sequence[Region], tile: int) -> None:
        """Add the owned part of each tile of a batch.

        Args:
            layer: the pooling module.
            x: (N,C,h,w) the layer's input for N tiles of ``tile`` pixels per side at the
                network's input, so the layer works at a scale of ``tile // h``.
            regions: N owned regions in input pixels, multiples of that scale.
            tile: the tile side at the network's input.
        """
        if len(regions) != x.shape[0]:
            raise ValueError(f"{len(regions)} owned regions for a batch of {x.shape[0]} tiles")
        scale = tile // x.shape[-2]
        total = torch.zeros(x.shape[1], dtype=torch.float64)
        maximum = torch.full((x.shape[1],), -torch.inf)
        count = 0
        for k, (y0, y1, x0, x1) in enumerate(regions):
            part = x[k, :, y0 // scale : -(-y1 // scale), x0 // scale : -(-x1 // scale)]
            total += part.sum(dim=(1, 2), dtype=torch.float64).cpu()
            maximum = torch.maximum(maximum, part.amax(dim=(1, 2)).float().cpu())
            count += part.shape[1] * part.shape[2]
        self.add_sums(layer, total, count, maximum)

    def add_sums(
        self, layer: nn.Module, total: torch.Tensor, count: int, maximum: torch.Tensor
    ) -> None:
        """Add owned pixels already summed: the path of a network that sums them itself (an
        exported ONNX graph, :mod:`girml.artifacts.onnx_runtime`).

        Args:
            layer: the pooling module (or the stand-in that keys it).
            total: (C,) float64 sum of the layer's input over the owned pixels.
            count: how many pixels were summed.
            maximum: (C,) float32 maximum over them.
        """
        total, maximum = total.to(torch.float64), maximum.float()
        with self._lock:
            seen = self._layers.get(layer)
            if seen is not None:  # new tensors: the caller's are left as they are
                total = total + seen.total
                count += seen.count
                maximum = torch.maximum(maximum, seen.maximum)
            self._layers[layer] = _LayerStats(total, count, maximum)

    def pooled(self, layer: nn.Module, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The photo's (N,C,1,1) mean and maximum for ``layer``, as ``like``'s dtype and device.

        Raises:
            KeyError: ``layer`` recorded nothing for this photo (another network's statistics).
        """
        stats = self._layers.get(layer)
        if stats is None or stats.count == 0:
            raise KeyError(f"no photo statistics recorded for {type(layer).__name__} {id(layer)}")
        n, c = like.shape[:2]
        mean = (stats.total / stats.count).to(like.device, like.dtype).view(1, c, 1, 1)
        maximum = stats.maximum.to(like.device, like.dtype).view(1, c, 1, 1)
        return mean.expand(n, c, 1, 1), maximum.expand(n, c, 1, 1)


@dataclass(frozen=True)
class TileBatch:
    """The batch of tiles the calling thread runs (:func:`tile_pooling`'s arguments)."""

    use: PhotoStats | None
    record: PhotoStats | None
    regions: tuple[Region, ...]
    tile: int


_current = threading.local()


def current_tile_batch() -> TileBatch | None:
    """The :class:`TileBatch` of the :func:`tile_pooling` block the calling thread is in, or
    None: what a network that pools outside torch (an ONNX session) reads instead of
    :func:`global_pool`."""
    return getattr(_current, "batch", None)


@contextmanager
def traced_pooling(pool: PoolFn) -> Iterator[None]:
    """Every :func:`global_pool` call of the calling thread returns ``pool(layer, x,
    with_max)`` for the block: how an exporter puts the photo's statistics into a traced graph
    (:mod:`girml.artifacts.onnx_export`)."""
    before = getattr(_current, "traced", None)
    _current.traced = pool
    try:
        yield
    finally:
        _current.traced = before


@contextmanager
def tile_pooling(
    *, use: PhotoStats | None, record: PhotoStats | None, regions: Sequence[Region], tile: int
) -> Iterator[None]:
    """Pool over the photo while the calling thread runs one batch of tiles.

    Args:
        use: statistics that every pooling layer returns instead of its tile's (None: each tile
            pools over itself).
        record: where each pooling layer adds its input over the tiles' owned regions (None:
            nothing recorded).
        regions: the owned region of each tile of the batch, in tile pixels.
        tile: the tiles' side (square tiles, multiples of the network's ``size_multiple``).
    """
    before = getattr(_current, "batch", None)
    _current.batch = TileBatch(use, record, tuple(regions), tile)
    try:
        yield
    finally:
        _current.batch = before


def global_pool(
    layer: nn.Module, x: torch.Tensor, with_max: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Mean (and maximum) of each channel of (N,C,H,W) ``x``: (N,C,1,1) each.

    Over ``x`` itself, unless the calling thread is inside :func:`tile_pooling`: then over the
    photo (see the module docstring), or inside :func:`traced_pooling`, as its function
    says. The maximum is None unless ``with_max``.
    """
    traced: PoolFn | None = getattr(_current, "traced", None)
    if traced is not None:
        return traced(layer, x, with_max)
    batch = current_tile_batch()
    if batch is not None and batch.record is not None:
        batch.record.add(layer, x.detach(), batch.regions, batch.tile)
    if batch is not None and batch.use is not None:
        mean, maximum = batch.use.pooled(layer, x)
        return mean, (maximum if with_max else None)
    mean = x.mean(dim=(2, 3), keepdim=True)
    return mean, (x.amax(dim=(2, 3), keepdim=True) if with_max else None)


def pools_globally(model: nn.Module) -> bool:
    """Whether any module of ``model`` pools through :func:`global_pool` (a class attribute
    ``photo_pooling = True`` says so), i.e. whether tiling needs the photo's statistics."""
    return any(getattr(module, "photo_pooling", False) for module in model.modules())
