"""Shared inference helpers: size padding, whole-image and tiled restoration.

Every model and every stage that runs a model goes through these functions (the idea of SwinIR's
``test()``), so padding and tiling behave the same in training-time validation, benchmarking and
the ``restore`` command.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

PAD_MODES = ("reflect", "replicate", "constant")


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


def restore_tiled(
    model: nn.Module,
    image: torch.Tensor,
    tile: int,
    overlap: int,
    device: torch.device | str | None = None,
    batch_tiles: int = 1,
) -> torch.Tensor:
    """Restore a large image tile by tile with bounded memory.

    Overlapping ``tile`` x ``tile`` windows (shifted inward at the borders so all are full size)
    are run through ``model`` under ``torch.inference_mode()``, ``batch_tiles`` at a time, and
    blended on the CPU with a separable smoothstep window (:func:`_ramp`), accumulating a float32
    output and weight buffer that are divided at the end. An image no larger than the tile is run
    once, whole. The model's train/eval mode is left as the caller set it.

    Args:
        model: maps (N,C,h,w) -> (N,C,h,w) for any h, w; if it has ``size_multiple``,
            ``tile`` must be a multiple of it.
        image: (1,C,H,W) float tensor, on any device.
        tile: tile side in pixels, > ``overlap``.
        overlap: pixels shared by neighbouring tiles, >= 0.
        device: where tiles are run; defaults to the model's parameter device.
        batch_tiles: tiles per forward pass, >= 1.

    Returns:
        (1,C,H,W) float32 tensor on the CPU (not clamped).
    """
    _check_batch(image)
    if image.shape[0] != 1:
        raise ValueError(f"restore_tiled expects a batch of one, got shape {tuple(image.shape)}")
    _check_tiling(model, tile, overlap, batch_tiles)
    run_on = torch.device(device) if device is not None else model_device(model, image.device)

    _, _, height, width = image.shape
    tile_h, tile_w = min(tile, height), min(tile, width)
    stride = tile - overlap
    coords = [(y, x) for y in _starts(height, tile, stride) for x in _starts(width, tile, stride)]
    window = _ramp(tile_h, overlap)[:, None] * _ramp(tile_w, overlap)[None, :]
    output = torch.zeros(1, image.shape[1], height, width)
    weight = torch.zeros(1, 1, height, width)

    with torch.inference_mode():
        for first in range(0, len(coords), batch_tiles):
            chunk = coords[first : first + batch_tiles]
            batch = torch.cat([image[..., y : y + tile_h, x : x + tile_w] for y, x in chunk])
            pred = model(batch.to(run_on)).float().cpu()
            for k, (y, x) in enumerate(chunk):
                output[..., y : y + tile_h, x : x + tile_w] += pred[k] * window
                weight[..., y : y + tile_h, x : x + tile_w] += window
    return output / weight


def restore_image(
    model: nn.Module,
    image: torch.Tensor,
    tile: int | None,
    overlap: int,
    device: torch.device | str | None = None,
    batch_tiles: int = 1,
) -> torch.Tensor:
    """Restore an image whole when ``tile`` is None or it fits in one tile, else tiled.

    Args:
        model: restoration network (N,C,h,w) -> (N,C,h,w).
        image: (B,C,H,W) float tensor in [0,1]; B must be 1 when tiling is needed.
        tile: tile side in pixels, or None for whole-image inference.
        overlap: tile overlap in pixels (ignored for whole-image inference).
        device: where the model runs; defaults to the model's parameter device.
        batch_tiles: tiles per forward pass when tiling.

    Returns:
        (B,C,H,W) float32 tensor on the CPU, clamped to [0,1].
    """
    _check_batch(image)
    if tile is not None:
        _check_tiling(model, tile, overlap, batch_tiles)
    if tile is not None and max(image.shape[-2:]) > tile:
        out = restore_tiled(model, image, tile, overlap, device=device, batch_tiles=batch_tiles)
    else:
        run_on = torch.device(device) if device is not None else model_device(model, image.device)
        with torch.inference_mode():
            out = model(image.to(run_on)).float().cpu()
    return out.clamp(0.0, 1.0)
