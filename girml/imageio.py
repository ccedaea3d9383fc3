"""Image files in and out: one reader with one conversion rule, atomic writers, tensor helpers.

Conversion rule (also stated in the README): EXIF orientation is applied; palette images are
expanded; images with alpha are composited over white; grayscale is replicated to three
channels; 16-bit and 32-bit integer images are scaled to 8 bits (``round(v / 257)`` for 16-bit);
everything ends as RGB, uint8, shape (H, W, 3).
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

# ITU-R BT.601 luma weights (RGB -> gray), as BasicSR and OpenCV use them
BT601_LUMA = (0.299, 0.587, 0.114)
IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".gif"}
)
DEFAULT_MAX_PIXELS = 100_000_000


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
        ImageReadError: empty, not an image, truncated, corrupt or too large.
    """
    if not data:
        raise ImageReadError(name, "empty file")
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            if width * height > max_pixels:
                raise ImageReadError(
                    name,
                    f"decompression bomb: {width}x{height} = {width * height} pixels "
                    f"exceeds max_pixels={max_pixels}",
                )
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                img.load()
            return _to_rgb(img)
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


def read_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image file to RGB pixels; see :func:`decode_image` for the contract."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ImageReadError(path, f"unreadable file ({exc.strerror or exc})") from None
    return decode_image(data, name=str(path), max_pixels=max_pixels)


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds.

    An interrupted or failed write therefore never leaves a half-written file at ``path``.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        tmp.chmod(0o666 & ~_current_umask())  # mkstemp makes 0600 files
        os.replace(tmp, target)
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
