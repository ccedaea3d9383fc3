"""The ``collect`` stage: gather clean source images into ``images/`` plus a manifest.

Outputs under ``out_dir``:

- ``images/<id>.png``: RGB 8-bit PNG of each kept image (read with :mod:`girml.core.imageio`'s
  conversion rule);
- ``manifest.csv``: ``id,source,origin,width,height,category,split``, sorted by id;
- ``rejected.csv``: ``source,origin,reason`` for every refused item (header even when empty).

The id is content-derived (:func:`image_id`), so exact duplicates collapse to one row and the
split (:func:`assign_split`) of an image never changes when other images are added. PNGs and
CSVs are written atomically; PNGs no longer in the manifest are removed at the end.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import logging
import os
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from girml.config import CollectConfig, SplitFractions
from girml.core.imageio import ImageReadError, write_png, write_text
from girml.data import packages  # noqa: F401  (registers the ``packages`` source)
from girml.data.sources import (
    BUILTIN_IMAGES,
    Rejection,
    SourceItem,
    list_source,
    printable_name,
)

__all__ = ["BUILTIN_IMAGES", "CollectResult", "assign_split", "collect", "image_id"]

logger = logging.getLogger(__name__)

MANIFEST_COLUMNS = ("id", "source", "origin", "width", "height", "category", "split")
REJECTED_COLUMNS = ("source", "origin", "reason")
ID_LENGTH = 16


@dataclass(frozen=True)
class CollectResult:
    """Counts from one ``collect`` run.

    Attributes:
        n_images: rows in ``manifest.csv``.
        n_rejected: rows in ``rejected.csv`` (duplicates included).
        n_duplicates: rejected rows that are exact duplicates of a kept image.
        n_train: kept images in the train split.
        n_val: kept images in the val split.
        n_test: kept images in the test split.
    """

    n_images: int
    n_rejected: int
    n_duplicates: int
    n_train: int
    n_val: int
    n_test: int


@dataclass(frozen=True)
class _Kept:
    id: str
    width: int
    height: int


def image_id(pixels: np.ndarray) -> str:
    """Content id of an image: sha256 over the pixel bytes and the shape, first 16 hex chars.

    Args:
        pixels: (H, W, 3) uint8 array in [0, 255].

    Returns:
        16 lowercase hex characters.
    """
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"image_id expects uint8 (H, W, 3), got {pixels.dtype} {pixels.shape}")
    digest = hashlib.sha256(np.ascontiguousarray(pixels).tobytes())
    digest.update("x".join(str(n) for n in pixels.shape).encode("ascii"))
    return digest.hexdigest()[:ID_LENGTH]


def assign_split(image_id: str, fractions: SplitFractions) -> str:
    """Split of an image, a pure function of its id (stable when images are added).

    ``u = int(id[:8], 16) / 2**32``; ``"test"`` if ``u < test``, ``"val"`` if
    ``u < test + val``, else ``"train"``.

    Args:
        image_id: hex id from :func:`image_id` (at least 8 hex characters).
        fractions: the val and test fractions.

    Returns:
        ``"train"``, ``"val"`` or ``"test"``.
    """
    head = image_id[:8]
    if len(head) < 8 or any(c not in "0123456789abcdefABCDEF" for c in head):
        raise ValueError(f"image_id must start with 8 hex characters, got {image_id!r}")
    u = int(head, 16) / 2**32
    if u < fractions.test:
        return "test"
    if u < fractions.test + fractions.val:
        return "val"
    return "train"


def _ingest(
    item: SourceItem, images_dir: Path, min_size: int, max_pixels: int, max_bytes: int
) -> _Kept | Rejection:
    """Load, check and store one item (runs in a worker thread)."""
    try:
        pixels = item.load(max_pixels, max_bytes)
    except ImageReadError as exc:
        return Rejection(item.source, item.origin, exc.reason)
    except MemoryError:
        return Rejection(item.source, item.origin, "out of memory while decoding")
    height, width = pixels.shape[:2]
    if min(height, width) < min_size:
        return Rejection(
            item.source, item.origin, f"too small: {width}x{height}, min_size {min_size}"
        )
    kept = _Kept(image_id(pixels), width, height)
    target = images_dir / f"{kept.id}.png"
    # Same id means same pixels, hence the same PNG bytes: an existing file is already right.
    if not target.exists():
        write_png(target, pixels)
    return kept


def _csv_text(columns: tuple[str, ...], rows: list[tuple[object, ...]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    # every cell valid UTF-8, whatever a source let through (file names that are not UTF-8)
    writer.writerows(
        tuple(printable_name(cell) if isinstance(cell, str) else cell for cell in row)
        for row in rows
    )
    return buffer.getvalue()


def _remove_stale(images_dir: Path, keep: set[str]) -> int:
    """Delete PNGs not in ``keep`` and temp files left by interrupted runs; return the count."""
    removed = 0
    for path in images_dir.iterdir():
        stale_png = path.suffix == ".png" and path.stem not in keep
        leftover_tmp = path.name.startswith(".") and path.suffix == ".tmp"
        if path.is_file() and (stale_png or leftover_tmp):
            path.unlink()
            removed += 1
    return removed


@dataclass
class _Tally:
    """What the ingest loop accumulates: manifest rows by id, rejections, duplicate count."""

    rows: dict[str, tuple[object, ...]]
    rejected: list[Rejection]
    n_duplicates: int = 0


def _list_entries(cfg: CollectConfig) -> list[SourceItem | Rejection]:
    """Every source's items and listing-time rejections, in source then origin order."""
    return [
        entry
        for source in cfg.sources
        for entry in list_source(source, max_member_bytes=cfg.max_member_bytes)
    ]


def _record(
    tally: _Tally, entry: SourceItem, outcome: _Kept | Rejection, cfg: CollectConfig
) -> None:
    """Add one ingested item to ``tally``: a rejection, a duplicate, or a new manifest row."""
    if isinstance(outcome, Rejection):
        tally.rejected.append(outcome)
    elif outcome.id in tally.rows:
        tally.rejected.append(Rejection(entry.source, entry.origin, f"duplicate of {outcome.id}"))
        tally.n_duplicates += 1
    else:
        tally.rows[outcome.id] = (
            outcome.id,
            entry.source,
            entry.origin,
            outcome.width,
            outcome.height,
            entry.category,
            assign_split(outcome.id, entry.split or cfg.split),
        )


def _ingest_all(
    entries: list[SourceItem | Rejection], cfg: CollectConfig, images_dir: Path, n_workers: int
) -> _Tally:
    """Ingest every item on ``n_workers`` threads, tallying outcomes in entry order."""
    items = [e for e in entries if isinstance(e, SourceItem)]
    ingest = functools.partial(
        _ingest,
        images_dir=images_dir,
        min_size=cfg.min_size,
        max_pixels=cfg.max_pixels,
        max_bytes=cfg.max_file_bytes,
    )
    tally = _Tally(rows={}, rejected=[])
    with (
        ThreadPoolExecutor(max_workers=n_workers) as pool,
        tqdm(total=len(items), desc="collect", unit="img", file=sys.stderr) as progress,
    ):
        outcomes = pool.map(ingest, items)
        for entry in entries:
            if isinstance(entry, Rejection):
                tally.rejected.append(entry)
                continue
            outcome = next(outcomes)
            progress.update()
            _record(tally, entry, outcome, cfg)
    return tally


def _write_tables(
    out_dir: Path, manifest: list[tuple[object, ...]], rejected: list[Rejection]
) -> None:
    """Write ``manifest.csv`` (rows sorted by id) and ``rejected.csv`` atomically."""
    write_text(out_dir / "manifest.csv", _csv_text(MANIFEST_COLUMNS, manifest))
    write_text(
        out_dir / "rejected.csv",
        _csv_text(REJECTED_COLUMNS, [(r.source, r.origin, r.reason) for r in rejected]),
    )


def _log_result(result: CollectResult, n_stale: int, out_dir: Path) -> None:
    """Log the run's counts in one line."""
    logger.info(
        "collect: %d images (train %d, val %d, test %d), %d rejected (%d duplicates), "
        "%d stale removed -> %s",
        result.n_images,
        result.n_train,
        result.n_val,
        result.n_test,
        result.n_rejected,
        result.n_duplicates,
        n_stale,
        out_dir,
    )


def collect(cfg: CollectConfig, out_dir: Path, *, workers: int = 0) -> CollectResult:
    """Run the collect stage: list every source, load, deduplicate, split and write outputs.

    Items are processed in source order, then origin order; the first of several exact
    duplicates is kept. Bad items (unreadable, corrupt, too small, too large in bytes or pixels,
    failed downloads, folder loops, unsafe archive members) are listed in ``rejected.csv`` and
    never stop the run. Output is deterministic.

    Args:
        cfg: the validated ``collect`` section.
        out_dir: output folder (created); receives ``images/``, ``manifest.csv``,
            ``rejected.csv``.
        workers: threads for reading/decoding/encoding; 0 means ``os.cpu_count()``.

    Returns:
        The run's counts.

    Raises:
        girml.data.sources.SourceError: a source cannot be listed at all.
        girml.config.ConfigError: a builtin source names unknown images.
    """
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    n_workers = workers or os.cpu_count() or 1
    out_dir = Path(out_dir)
    images_dir = out_dir / "images"
    images_dir.mkdir(parents=True, exist_ok=True)

    tally = _ingest_all(_list_entries(cfg), cfg, images_dir, n_workers)
    manifest = [tally.rows[key] for key in sorted(tally.rows)]
    _write_tables(out_dir, manifest, tally.rejected)
    n_stale = _remove_stale(images_dir, set(tally.rows))

    splits = Counter(row[-1] for row in manifest)
    result = CollectResult(
        n_images=len(manifest),
        n_rejected=len(tally.rejected),
        n_duplicates=tally.n_duplicates,
        n_train=splits["train"],
        n_val=splits["val"],
        n_test=splits["test"],
    )
    _log_result(result, n_stale, out_dir)
    return result


def nothing_collected(rejected_csv: Path, limit: int = 3) -> str:
    """Why a ``collect`` run kept no image, from its ``rejected.csv``, in one line.

    Args:
        rejected_csv: the run's ``rejected.csv`` (``source,origin,reason``).
        limit: example rejections to quote.

    Returns:
        ``"no image collected: every source failed (folder: 3 rejected, urls: 1 rejected);
        e.g. <origin>: <reason>; ... (all in rejected.csv)"``, or a line saying the sources
        listed nothing.
    """
    with rejected_csv.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return "no image collected: the sources listed no image (check collect.sources)"
    per_source = Counter(row["source"] for row in rows)
    counts = ", ".join(f"{source}: {n} rejected" for source, n in sorted(per_source.items()))
    examples = "; ".join(f"{row['origin']}: {row['reason']}" for row in rows[:limit])
    return (
        f"no image collected: every source failed ({counts}); e.g. {examples} "
        f"(all in {rejected_csv})"
    )
