"""Which real photos the photo benchmarks score, and their crops (``real_photos.py``,
``whole_photos.py``).

- :func:`default_photos`: photos outside the project's data that exist on this machine
  (matplotlib's ``grace_hopper.jpg``, the Rust embedded book's two circuit-board photos).
- :func:`manifest_photos`: the package photos of a collect manifest's test split: camera photos
  the training never saw (``profiles/release.yaml`` collects them).
- :func:`load_crops` cuts a grid of crops; :func:`load_whole` takes each photo whole.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np

from girml.core.imageio import IMAGE_SUFFIXES, read_image

log = logging.getLogger("real_photos")

RUST_ASSETS = Path(
    "/root/.rustup/toolchains/stable-x86_64-unknown-linux-gnu/share/doc/rust/html/"
    "embedded-book/assets"
)


@dataclass(frozen=True)
class Crop:
    """One ground-truth crop: (size, size, 3) uint8 from ``photo`` at row ``y``, column ``x``.

    ``photo_size`` is the whole photo's (width, height) in pixels.
    """

    photo: Path
    y: int
    x: int
    pixels: np.ndarray
    photo_size: tuple[int, int]


def default_photos() -> list[Path]:
    """The real colour photos outside the project's data that exist on this machine."""
    candidates = [
        Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg",
        RUST_ASSETS / "f3.jpg",
        RUST_ASSETS / "verify.jpeg",
    ]
    found = [p for p in candidates if p.is_file()]
    for path in candidates:
        if not path.is_file():
            log.warning("default photo %s not found: skipped", path)
    return found


def expand_photos(paths: Sequence[Path]) -> list[Path]:
    """Files as given, folders as their image files (sorted, not recursive, hidden skipped)."""
    files = []
    for path in paths:
        if path.is_dir():
            files += sorted(
                p
                for p in path.iterdir()
                if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
            )
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"--photos: {path} is neither a file nor a folder")
    return files


def grid_crops(image: np.ndarray, size: int, max_crops: int) -> list[tuple[int, int]]:
    """Top-left corners of non-overlapping ``size`` crops on a grid centred on ``image``.

    Args:
        image: (H, W, 3) uint8.
        size: crop side in pixels, >= 1.
        max_crops: at most this many, row by row.

    Returns:
        ``(y, x)`` corners; empty when the image is smaller than one crop.
    """
    height, width = image.shape[:2]
    rows, cols = height // size, width // size
    y0, x0 = (height - rows * size) // 2, (width - cols * size) // 2
    corners = [(y0 + r * size, x0 + c * size) for r in range(rows) for c in range(cols)]
    return corners[:max_crops]


def load_crops(photos: Sequence[Path], size: int, max_crops: int) -> list[Crop]:
    """Read every photo and cut its crops (a photo smaller than one crop is skipped)."""
    crops = []
    for photo in photos:
        image = read_image(photo)
        corners = grid_crops(image, size, max_crops)
        if not corners:
            log.warning("%s (%dx%d) is smaller than one crop: skipped", photo, *image.shape[1::-1])
        width_height = (image.shape[1], image.shape[0])
        for y, x in corners:
            pixels = np.ascontiguousarray(image[y : y + size, x : x + size])
            crops.append(Crop(photo, y, x, pixels, width_height))
    return crops


def manifest_photos(
    manifest: Path, split: str = "test", category: str = "photo", source: str = "packages"
) -> list[Path]:
    """The images of a collect manifest (``data/clean/manifest.csv``) from ``source`` in
    ``split`` with ``category``, as their collected PNGs (``images/<id>.png`` beside it)."""
    with manifest.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    picked = [
        manifest.parent / "images" / f"{row['id']}.png"
        for row in rows
        if row["split"] == split and row["category"] == category and row["source"] == source
    ]
    if not picked:
        raise ValueError(f"{manifest}: no {source} image of category {category!r} in {split}")
    return picked


def load_whole(photos: Sequence[Path]) -> list[Crop]:
    """Every photo whole, as one :class:`Crop` at (0, 0)."""
    wholes = []
    for photo in photos:
        image = read_image(photo)
        wholes.append(Crop(photo, 0, 0, image, (image.shape[1], image.shape[0])))
    return wholes
