"""Image files in and out: one reader with one conversion rule, atomic writers, tensor helpers.

Conversion rule (also stated in docs/data.md): EXIF orientation is applied; palette images are
expanded; images with alpha are composited over white; grayscale is replicated to three
channels; 16-bit and 32-bit integer images are scaled to 8 bits (``round(v / 257)`` for 16-bit,
grey or colour); everything ends as RGB, uint8, shape (H, W, 3).

Bounds come before allocation: a file over ``max_bytes`` is refused from its size on disk before a
byte is read, and an image over ``max_pixels`` from its header before it is decoded.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import stat
import struct
import tempfile
import threading
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from girml.core.files import IMAGE_SUFFIXES  # noqa: F401  (re-exported: the suffixes read)

# ITU-R BT.601 luma weights (RGB -> gray), as BasicSR and OpenCV use them
BT601_LUMA = (0.299, 0.587, 0.114)
DEFAULT_MAX_PIXELS = 100_000_000
DEFAULT_MAX_FILE_BYTES = 1_000_000_000
# Pillow's own bomb check reads a process-wide setting; it is lifted (under this lock) only to
# open an image that ``max_pixels`` allows but Pillow's default would refuse.
_PILLOW_CAP_LOCK = threading.Lock()
# 16-bit colour PNGs: Pillow keeps the high byte of each sample; the low bytes come from a
# second decode of the same data (a rawmode with the same bits per pixel, so the PNG filters
# are undone alike).
_PNG16_LOW_RAWMODE = {"RGB;16B": "RGB;16L", "RGBA;16B": "RGBA;16L"}


class ImageReadError(ValueError):
    """An image file could not be turned into pixels.

    Attributes:
        path: the offending file (or a label for in-memory data).
        reason: a short, human-readable cause.
    """

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ImageTooLarge(ImageReadError):
    """An image refused by a size cap before it was read or decoded.

    Attributes:
        limit: the cap's name, ``"max_file_bytes"`` or ``"max_pixels"``.
    """

    def __init__(self, path: str | os.PathLike, reason: str, limit: str) -> None:
        self.limit = limit
        super().__init__(path, reason)


def _png_rawmode(img: Image.Image) -> str | None:
    """How Pillow will unpack an opened, not yet loaded, PNG's pixels (``"RGB;16B"``...)."""
    if img.format != "PNG" or len(img.tile) != 1:
        return None
    return str(img.tile[0].args)


def _png16_samples(data: bytes, img: Image.Image, rawmode: str | None) -> np.ndarray | None:
    """The full 16-bit samples of a 16-bit colour PNG, (H, W, C) uint16; None for other images.

    Pillow decodes 16-bit RGB, RGBA and grey+alpha PNGs to 8 bits by dropping the low byte
    (truncation, where the conversion rule says ``round(v / 257)``).

    Args:
        data: the PNG file's bytes.
        img: the same PNG, loaded by Pillow (its 8-bit samples are the high bytes).
        rawmode: :func:`_png_rawmode` of ``img`` before it was loaded.
    """
    if rawmode in _PNG16_LOW_RAWMODE:
        high = np.asarray(img).astype(np.uint16)
        low = _decode_png_as(data, _PNG16_LOW_RAWMODE[rawmode])
        return (high << 8) | low
    if rawmode == "LA;16B":  # grey+alpha: its 4 bytes a pixel read as 4 8-bit samples
        raw = _decode_png_as(data, "RGBA").astype(np.uint16)
        return np.stack([(raw[..., 0] << 8) | raw[..., 1], (raw[..., 2] << 8) | raw[..., 3]], -1)
    return None


def _decode_png_as(data: bytes, rawmode: str) -> np.ndarray:
    """Decode a PNG's pixel data with another raw mode of the same bits per pixel."""
    with Image.open(io.BytesIO(data)) as img:
        img.tile = [tile._replace(args=rawmode) for tile in img.tile]
        img.load()
        return np.asarray(img).astype(np.uint16)


def _from_png16(samples: np.ndarray, img: Image.Image) -> Image.Image:
    """An 8-bit image of 16-bit ``samples`` (``round(v / 257)``) with ``img``'s metadata; a
    16-bit ``tRNS`` colour becomes an alpha channel (exact, before the rounding)."""
    eight = np.round(samples / 257.0).astype(np.uint8)
    info = dict(img.info)
    key = info.pop("transparency", None)
    if samples.shape[2] == 3 and isinstance(key, tuple) and len(key) == 3:
        alpha = np.where((samples == np.array(key, np.uint16)).all(axis=2), 0, 255)
        eight = np.dstack([eight, alpha.astype(np.uint8)])
    out = Image.fromarray(eight)  # RGB, RGBA or LA by the channel count
    out.info = info  # EXIF orientation included
    return out


def _open_capped(data: bytes, name: str, max_pixels: int) -> Image.Image:
    """``Image.open`` with ``max_pixels`` as the only pixel cap.

    Pillow's own check (``Image.MAX_IMAGE_PIXELS``, about 89 MP: a warning, an error above
    twice that) would refuse a 12000x12000 photo that the caller allows.

    Raises:
        ImageTooLarge: more pixels than ``max_pixels``.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # checked below
        try:
            img = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError:
            with _PILLOW_CAP_LOCK:
                saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
                try:
                    img = Image.open(io.BytesIO(data))
                finally:
                    Image.MAX_IMAGE_PIXELS = saved
    width, height = img.size
    if width * height > max_pixels:
        img.close()
        raise ImageTooLarge(
            name,
            f"decompression bomb: {width}x{height} = {width * height} pixels "
            f"exceeds max_pixels={max_pixels}",
            "max_pixels",
        )
    return img


def _to_rgb(img: Image.Image) -> np.ndarray:
    """Convert an opened PIL image to RGB uint8 (H, W, 3) following the module's rule."""
    img = ImageOps.exif_transpose(img)
    mode = img.mode
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img).astype(np.float64)
        scale = 257.0 if mode.startswith("I;16") or arr.max() <= 65535 else 16843009.0
        gray = np.clip(np.round(arr / scale), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        hi = 1.0 if arr.max() <= 1.0 else 255.0
        gray = np.clip(np.round(arr / hi * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA") or (mode == "RGB" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba).convert("RGB")
    elif mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.uint8).copy()


def decode_image(
    data: bytes, name: str = "<bytes>", max_pixels: int = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """Decode encoded image bytes to RGB pixels.

    Args:
        data: the encoded file content.
        name: label used in error messages (usually the file path).
        max_pixels: images with more pixels than this are refused as decompression bombs.

    Returns:
        Array of shape (H, W, 3), dtype uint8, range [0, 255].

    Raises:
        ImageReadError: empty, not an image, truncated or corrupt; :class:`ImageTooLarge` over
            ``max_pixels`` (checked from the header, before decoding).
    """
    if not data:
        raise ImageReadError(name, "empty file")
    try:
        with _open_capped(data, name, max_pixels) as img:
            rawmode = _png_rawmode(img)
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                img.load()
            samples = _png16_samples(data, img, rawmode)
            return _to_rgb(img if samples is None else _from_png16(samples, img))
    except ImageReadError:
        raise
    except UnidentifiedImageError:
        raise ImageReadError(name, "not an image (unrecognized format)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageReadError(name, f"decompression bomb: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error) as exc:
        # Pillow raises any of these on crafted or damaged files
        reason = str(exc) or type(exc).__name__
        if "truncated" in reason.lower():
            raise ImageReadError(name, f"truncated file ({reason})") from None
        raise ImageReadError(name, f"corrupt or unreadable image ({reason})") from None


def read_image(
    path: str | os.PathLike,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> np.ndarray:
    """Read an image file to RGB pixels; see :func:`decode_image` for the contract.

    The file's size is checked (``stat``) before it is read, and the read stops past
    ``max_bytes`` whatever the size said (a file that grows, a device), so a 40 GB sparse
    ``.jpg`` costs nothing.

    Raises:
        ImageReadError: unreadable, not a regular file, or as :func:`decode_image`;
            :class:`ImageTooLarge` over ``max_bytes`` or ``max_pixels``.
    """
    over = f"exceeds max_file_bytes={max_bytes}"
    try:
        info = os.stat(path)  # before open: opening a FIFO would wait for a writer
        if not stat.S_ISREG(info.st_mode):
            raise ImageReadError(path, "not a regular file")
        if info.st_size > max_bytes:
            size = f"{info.st_size} bytes"
            raise ImageTooLarge(path, f"file too large: {size} {over}", "max_file_bytes")
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise ImageReadError(path, f"unreadable file ({exc.strerror or exc})") from None
    if len(data) > max_bytes:  # it grew since stat
        raise ImageTooLarge(path, f"file too large: more than {max_bytes} bytes", "max_file_bytes")
    return decode_image(data, name=str(path), max_pixels=max_pixels)


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds.

    An interrupted or failed write therefore never leaves a half-written file at ``path``. The
    temporary name is short (``.girml-XXXXXXXX.tmp``), so any name that fits the file system
    can be written; an OS error that names no file (a full disk: the write fails, not the open)
    is raised again naming ``path``.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".girml-", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        tmp.chmod(0o666 & ~_current_umask())  # mkstemp makes 0600 files
        os.replace(tmp, target)
    except OSError as exc:
        if exc.filename is not None or exc.errno is None:
            raise
        raise OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(target)) from exc
    finally:
        tmp.unlink(missing_ok=True)


def swap_dir(new: str | os.PathLike, target: str | os.PathLike) -> None:
    """Replace folder ``target`` by folder ``new`` (same parent) with two renames.

    Readers see the old folder or the new one, never a mix; if the second rename fails the old
    folder is put back.
    """
    new, target = Path(new), Path(target)
    if not target.exists():
        new.rename(target)
        return
    old = target.with_name(f".{target.name}.{uuid.uuid4().hex}.old")
    target.rename(old)
    try:
        new.rename(target)
    except OSError:
        old.rename(target)
        raise
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def staged_dir(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh folder beside ``target`` that replaces it (:func:`swap_dir`) only if the
    block succeeds; on any error it is removed and ``target`` stays as it was."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    tmp.mkdir()
    try:
        yield tmp
        swap_dir(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_png(path: str | os.PathLike, image: np.ndarray, compress_level: int = 1) -> None:
    """Write an RGB uint8 array of shape (H, W, 3) as PNG, atomically."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"write_png expects uint8 (H, W, 3), got {image.dtype} {tuple(image.shape)}"
        )
    with atomic_path(path) as tmp:
        Image.fromarray(image, mode="RGB").save(tmp, format="PNG", compress_level=compress_level)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 in [0, 255] -> (1, 3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255.0


def to_uint8(tensor: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) or (3, H, W) float in [0, 1] -> (H, W, 3) uint8, rounded and clipped."""
    if tensor.ndim == 4:
        if tensor.shape[0] != 1:
            raise ValueError(f"to_uint8 expects a batch of one, got shape {tuple(tensor.shape)}")
        tensor = tensor[0]
    arr = (tensor.detach().float().clamp(0, 1) * 255.0).round().to(torch.uint8)
    return arr.permute(1, 2, 0).cpu().numpy()


def reduce_factor(height: int, width: int, max_side: int | None) -> int:
    """The smallest integer factor that brings the longer side to at most ``max_side``."""
    if max_side is None or max(height, width) <= max_side:
        return 1
    return -(-max(height, width) // max_side)


def box_reduce(pixels: np.ndarray, factor: int) -> np.ndarray:
    """(H, W, 3) uint8 averaged over ``factor`` x ``factor`` boxes (Pillow's ``reduce``: exact
    integer arithmetic, so the same bytes on every machine); ``factor`` 1 returns ``pixels``."""
    if factor == 1:
        return pixels
    return np.array(Image.fromarray(np.ascontiguousarray(pixels)).reduce(factor))


def png_data_uri(png: bytes) -> str:
    """A ``data:image/png;base64,...`` URI of PNG bytes: an image inside a self-contained page."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
