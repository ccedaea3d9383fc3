"""Restore image files with a trained model: the library side of ``girml restore``."""

from __future__ import annotations

import errno
import functools
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from girml.config import RESTORE_MAX_FILE_BYTES, RESTORE_MAX_PIXELS
from girml.files import IMAGE_SUFFIXES, WalkProblem, walk_files
from girml.imageio import (
    ImageReadError,
    ImageTooLarge,
    read_image,
    to_tensor,
    to_uint8,
    write_png,
)
from girml.inference import restore_image

log = logging.getLogger(__name__)

# Write errors that every later output would meet too: they stop the batch (one line naming
# the path) instead of failing each file in turn.
_BATCH_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


@dataclass
class RestoreReport:
    """Outcome of :func:`restore_files`.

    Attributes:
        restored: (input file, output PNG) pairs, in processing order.
        failed: (input path, reason) pairs for inputs that produced no output.
    """

    restored: list[tuple[Path, Path]] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every input was restored."""
        return not self.failed

    def fail(self, path: Path, reason: str) -> None:
        """Record ``path`` as failed and log it at ERROR."""
        log.error("cannot restore %s: %s", path, reason)
        self.failed.append((path, reason))

    def summary(self, inputs: list[Path], out_dir: Path) -> tuple[list[str], str | None]:
        """What ``girml restore`` says at the end: an error line per failed input
        (``path: reason``), and the count line (None when no image was found at all)."""
        if not self.restored and not self.failed:
            names = ", ".join(str(path) for path in inputs)
            suffixes = " ".join(sorted(IMAGE_SUFFIXES))
            return [f"nothing restored: no image file ({suffixes}) in {names}"], None
        errors = [f"{path}: {reason}" for path, reason in self.failed]
        count = f"restored {len(self.restored)} image(s) into {out_dir}, {len(self.failed)} failed"
        return errors, count


def _expand(
    inputs: list[Path], out_dir: Path
) -> tuple[list[tuple[Path, Path]], list[tuple[Path, str]]]:
    """(file, output folder) jobs for every input, and (path, reason) for what cannot be used.

    Folders are searched recursively for files with a suffix in ``IMAGE_SUFFIXES`` (any case,
    hidden files and folders skipped), following linked folders (:func:`girml.files.walk_files`:
    a link loop, an unreadable folder or a broken link is a failure); their outputs keep the
    sub-folder relative to the input folder. An input that does not exist is a failure too.
    """
    jobs: list[tuple[Path, Path]] = []
    failures: list[tuple[Path, str]] = []
    for item in inputs:
        if item.is_dir():
            found = list(walk_files(item))
            failures += [(p.path, p.reason) for p in found if isinstance(p, WalkProblem)]
            files = sorted(p for p in found if isinstance(p, Path))
            jobs += [(file, out_dir / file.relative_to(item).parent) for file in files]
        elif item.is_file():
            jobs.append((item, out_dir))
        elif item.exists():  # a FIFO or a device: reading it could wait forever
            failures.append((item, "not a regular file"))
        else:
            failures.append((item, "no such file or folder"))
    return jobs, failures


def _output_names(jobs: list[tuple[Path, Path]]) -> list[Path]:
    """Output PNG paths for ``jobs``, following the naming rule of :func:`restore_files`."""
    shared = Counter((folder, file.stem) for file, folder in jobs)
    taken: set[Path] = set()
    outputs = []
    for file, folder in jobs:
        base = file.stem if shared[folder, file.stem] == 1 else file.name
        out, k = folder / f"{base}.png", 0
        while out in taken:
            k += 1
            out = folder / f"{base}-{k}.png"
        taken.add(out)
        outputs.append(out)
    return outputs


def restore_files(
    inputs: list[Path],
    out_dir: Path,
    model: nn.Module,
    tile: int | None = 256,
    overlap: int = 32,
    device: torch.device | str | None = None,
    batch_tiles: int = 1,
    max_pixels: int = RESTORE_MAX_PIXELS,
    max_bytes: int = RESTORE_MAX_FILE_BYTES,
) -> RestoreReport:
    """Restore image files and folders into ``out_dir`` as PNGs of the same size.

    Each file is read with :func:`girml.imageio.read_image`, so the output is always RGB and in
    EXIF-corrected orientation (a photo stored sideways with an orientation tag comes out
    upright); grayscale, palette, alpha (composited over white) and 16-bit inputs all work.
    Images are restored tile by tile (:func:`girml.inference.restore_image`), so memory stays
    bounded for large photos.

    Output names: a file input ``x/a.jpg`` gives ``out_dir/a.png``; files found in a folder input
    keep their sub-folder (``in/sub/a.jpg`` -> ``out_dir/sub/a.png``). When several inputs would
    share an output name (``a.jpg`` and ``a.png`` in one folder), each is named after its full
    file name instead (``a.jpg.png``, ``a.png.png``); any name still taken gets ``-1``, ``-2``...
    Existing files in ``out_dir`` from earlier runs are overwritten.

    Every input that produces no output is logged at ERROR and listed in the report with its
    reason, and the others are still restored: missing, unreadable or undecodable, over
    ``max_bytes`` or ``max_pixels``, out of memory, a folder link loop, an output name too long
    for the file system. Outputs are written atomically through a short temporary name, so a
    failure never leaves a partial PNG. A write error that every later output would meet too
    (a full disk, a read-only or forbidden output folder) stops the batch instead.

    Args:
        inputs: image files and/or folders.
        out_dir: output folder (created).
        model: restoration network in eval mode (as :func:`girml.artifacts.loading.load_model`
            returns it).
        tile: tile side in pixels, a multiple of ``model.size_multiple``; None restores whole.
        overlap: pixels shared by neighbouring tiles.
        device: where the model runs (the model is moved there); defaults to the model's
            device.
        batch_tiles: tiles per forward pass, >= 1 (more help on GPUs; 1 is fastest on CPU).
        max_pixels: larger images are refused from their header (``--max-pixels``).
        max_bytes: larger files are refused from their size, before they are read
            (``--max-file-bytes``).

    Raises:
        ValueError: an output would overwrite one of the inputs (``out_dir`` is an input
            folder), or bad ``tile``/``overlap``/``batch_tiles``.
        OSError: a write error that stops the batch, naming the output it could not write.
    """
    planned, failures = _plan(inputs, out_dir)
    if device is not None:
        model.to(device)
    report = RestoreReport()
    for path, reason in failures:
        report.fail(path, reason)
    restore = functools.partial(
        restore_image, model, tile=tile, overlap=overlap, device=device, batch_tiles=batch_tiles
    )
    read = functools.partial(read_image, max_pixels=max_pixels, max_bytes=max_bytes)
    for file, out in planned:
        _restore_file(file, out, read, restore, report)
    return report


def _plan(
    inputs: list[Path], out_dir: Path
) -> tuple[list[tuple[Path, Path]], list[tuple[Path, str]]]:
    """(input file, output PNG) of every image to restore, and (path, reason) for the inputs
    that cannot be used (:func:`_expand`).

    Raises:
        ValueError: an output would overwrite one of the inputs.
    """
    jobs, failures = _expand([Path(p) for p in inputs], Path(out_dir))
    outputs = _output_names(jobs)
    sources = {file.resolve() for file, _ in jobs}
    clobbered = [out for out in outputs if out.resolve() in sources]
    if clobbered:
        raise ValueError(f"output {clobbered[0]} would overwrite an input; choose another out_dir")
    return [(file, out) for (file, _), out in zip(jobs, outputs, strict=True)], failures


def _restore_file(
    file: Path,
    out: Path,
    read: Callable[[Path], np.ndarray],
    restore: Callable[[torch.Tensor], torch.Tensor],
    report: RestoreReport,
) -> None:
    """Read ``file``, ``restore`` it and write the PNG ``out``; record the outcome in ``report``.

    Args:
        file: the input image.
        out: the output PNG (written atomically).
        read: path -> (H, W, 3) uint8 (:func:`girml.imageio.read_image` with the caps).
        restore: (1,3,H,W) float in [0, 1] -> the same, restored.
        report: gets ``(file, out)`` when restored, ``(file, reason)`` when not.

    Raises:
        OSError: a write error that stops the batch (:data:`_BATCH_ERRNOS`, or the output
            folder cannot be made), naming the output.
    """
    try:
        image = read(file)
    except ImageTooLarge as exc:
        option = "--" + exc.limit.replace("_", "-")
        return report.fail(file, f"{exc.reason} (raise it with {option})")
    except ImageReadError as exc:
        return report.fail(file, exc.reason)
    except MemoryError:
        return report.fail(file, "out of memory while decoding it")
    try:
        restored = to_uint8(restore(to_tensor(image)))
    except (MemoryError, torch.cuda.OutOfMemoryError):
        size = f"{image.shape[1]}x{image.shape[0]}"
        return report.fail(file, f"out of memory restoring {size} (try a smaller --tile)")
    try:
        write_png(out, restored)
    except OSError as exc:
        if exc.errno in _BATCH_ERRNOS or not out.parent.is_dir():
            raise
        return report.fail(file, f"cannot write {out}: {exc.strerror or exc}")
    log.info("restored %s -> %s (%dx%d)", file, out, image.shape[1], image.shape[0])
    report.restored.append((file, out))


def available_devices() -> list[str]:
    """The devices this torch can restore on: ``cpu``, then each visible ``cuda:N``, ``mps``."""
    found = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    return found + (["mps"] if mps is not None and mps.is_available() else [])


def pick_device(name: str | None) -> str:
    """The device to restore on: ``name`` once checked, by default ``cuda`` if any, else ``cpu``.

    Args:
        name: a torch device string (``cpu``, ``cuda``, ``cuda:1``, ``mps``) or None.

    Returns:
        The device string to pass to :func:`restore_files`.

    Raises:
        ValueError: ``name`` is no device string, or names a device this torch cannot use
            (``cuda`` on a CPU-only build, ``cuda:3`` with two GPUs); the message names it and
            what is available.
    """
    available = available_devices()
    if name is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    listed = f"available here: {', '.join(available)}"
    try:
        kind = torch.device(name)
    except (RuntimeError, ValueError):
        raise ValueError(f"{name!r} is not a device ({listed})") from None
    if kind.type == "cpu" or (kind.type == "mps" and "mps" in available):
        return name
    if kind.type == "cuda" and not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else "no GPU is visible"
        raise ValueError(f"{name!r} is not available: this torch has no CUDA ({build}; {listed})")
    if kind.type == "cuda" and (kind.index or 0) < torch.cuda.device_count():
        return name
    raise ValueError(f"{name!r} is not available ({listed})")
