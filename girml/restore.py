"""Restore image files with a trained model: the library side of ``girml restore``.

:func:`restore_files` plans the work (:func:`girml.restore_inputs.plan_restore`: which files,
which output names, which inputs cannot be used) and restores it. ``girml restore`` plans
before it loads the model, then calls :func:`restore_plan`, and writes :func:`write_summary`'s
JSON for ``--json``.
"""

from __future__ import annotations

import errno
import functools
import json
import logging
import sys
import time
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from girml.config import RESTORE_MAX_FILE_BYTES, RESTORE_MAX_PIXELS
from girml.core.files import IMAGE_SUFFIXES
from girml.core.imageio import (
    ImageReadError,
    ImageTooLarge,
    read_image,
    to_tensor,
    to_uint8,
    write_png,
    write_text,
)
from girml.core.inference import restore_image
from girml.core.urls import mask_text
from girml.restore_inputs import RestorePlan, plan_restore

log = logging.getLogger(__name__)

# Write errors that every later output would meet too: they stop the batch (one line naming
# the path) instead of failing each file in turn.
_BATCH_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


@dataclass(frozen=True)
class ImageResult:
    """What became of one input.

    Attributes:
        input: the input path, as reached from the arguments.
        output: the PNG written; None when it failed.
        seconds: wall time spent on it (read, restore, write); 0 for inputs refused up front.
        error: why it failed; None when restored.
    """

    input: Path
    output: Path | None
    seconds: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the input was restored."""
        return self.error is None


@dataclass
class RestoreReport:
    """Outcome of :func:`restore_plan`.

    Attributes:
        results: one per input, in the order met: inputs refused by the plan first, then the
            images in processing order.
        seconds: wall time of the whole batch.
        stopped: the write error that stopped the batch (a full disk...), or None.
    """

    results: list[ImageResult] = field(default_factory=list)
    seconds: float = 0.0
    stopped: OSError | None = None

    @property
    def restored(self) -> list[tuple[Path, Path]]:
        """(input file, output PNG) pairs, in processing order."""
        return [(r.input, r.output) for r in self.results if r.ok and r.output is not None]

    @property
    def failed(self) -> list[tuple[Path, str]]:
        """(input path, reason) pairs for inputs that produced no output."""
        return [(r.input, r.error) for r in self.results if r.error is not None]

    @property
    def ok(self) -> bool:
        """True when every input was restored."""
        return not self.failed and self.stopped is None

    @classmethod
    def refused(cls, plan: RestorePlan) -> RestoreReport:
        """A report of the inputs ``plan`` refused, before any image is restored."""
        report = cls()
        for path, reason in plan.failures:
            report.fail(path, reason)
        return report

    def fail(self, path: Path, reason: str, seconds: float = 0.0) -> None:
        """Record ``path`` as failed (logged at DEBUG: ``girml restore`` names it at the end)."""
        log.debug("cannot restore %s: %s", path, reason)
        self.results.append(ImageResult(path, None, seconds, reason))

    def summary(self, inputs: list[Path], out_dir: Path) -> tuple[list[str], str | None]:
        """What ``girml restore`` says at the end: an error line per failed input
        (``path: reason``), and the count line (None when no image was found at all)."""
        if not self.results:
            names = ", ".join(str(path) for path in inputs)
            suffixes = " ".join(sorted(IMAGE_SUFFIXES))
            return [f"nothing restored: no image file ({suffixes}) in {names}"], None
        errors = [f"{path}: {reason}" for path, reason in self.failed]
        count = f"restored {len(self.restored)} image(s) into {out_dir}, {len(self.failed)} failed"
        return errors, count


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
    progress: bool = False,
) -> RestoreReport:
    """Restore image files and folders into ``out_dir`` as PNGs of the same size.

    Each file is read with :func:`girml.core.imageio.read_image`, so the output is always RGB and in
    EXIF-corrected orientation (a photo stored sideways with an orientation tag comes out
    upright); grayscale, palette, alpha (composited over white) and 16-bit inputs all work.
    Images are restored tile by tile (:func:`girml.core.inference.restore_image`), so memory stays
    bounded for large photos.

    Output names mirror the inputs (:mod:`girml.restore_inputs`): a file input ``x/a.jpg``
    gives ``out_dir/a.png``; files found in a folder input keep their path relative to it
    (``in/sub/a.jpg`` -> ``out_dir/sub/a.png``), under a sub-folder named after each folder
    when several folders are given. Files of one folder that share a stem (``a.jpg``,
    ``a.png``) are named after their full names (``a.jpg.png``, ``a.png.png``). Existing files
    in ``out_dir`` from earlier runs are overwritten.

    Every input that produces no output is listed in the report with its reason, and the
    others are still restored: missing, unreadable or undecodable, over ``max_bytes`` or
    ``max_pixels``, out of memory, a folder link loop, an output name too long for the file
    system. Outputs are written atomically through a short temporary name, so a failure never
    leaves a partial PNG. A write error that every later output would meet too (a full disk,
    a read-only or forbidden output folder) stops the batch instead.

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
        progress: show a progress bar over the images on stderr.

    Raises:
        ValueError: two inputs would be written to the same output, or an output would
            overwrite one of the inputs (``out_dir`` is an input folder), or bad
            ``tile``/``overlap``/``batch_tiles``.
        OSError: a write error that stops the batch, naming the output it could not write.
    """
    plan = plan_restore([Path(p) for p in inputs], Path(out_dir), max_bytes)
    report = restore_plan(
        plan, model, tile, overlap, device, batch_tiles, max_pixels, max_bytes, progress
    )
    if report.stopped is not None:
        raise report.stopped
    return report


def restore_plan(
    plan: RestorePlan,
    model: nn.Module,
    tile: int | None = 256,
    overlap: int = 32,
    device: torch.device | str | None = None,
    batch_tiles: int = 1,
    max_pixels: int = RESTORE_MAX_PIXELS,
    max_bytes: int = RESTORE_MAX_FILE_BYTES,
    progress: bool = False,
) -> RestoreReport:
    """Restore the jobs of ``plan`` (:func:`girml.restore_inputs.plan_restore`); arguments as
    :func:`restore_files`.

    A write error that stops the batch is not raised but recorded in
    :attr:`RestoreReport.stopped`, with that image and the ones not attempted failed, so the
    caller can still report what was done.

    Raises:
        ValueError: bad ``tile``/``overlap``/``batch_tiles`` (at the first image).
    """
    started = time.perf_counter()
    if device is not None:
        model.to(device)
    report = RestoreReport.refused(plan)
    restore = functools.partial(
        restore_image, model, tile=tile, overlap=overlap, device=device, batch_tiles=batch_tiles
    )
    read = functools.partial(read_image, max_pixels=max_pixels, max_bytes=max_bytes)
    bar = tqdm(
        total=len(plan.jobs),
        desc="restore",
        unit="img",
        file=sys.stderr,
        disable=not progress,
        dynamic_ncols=True,
    )
    if plan.failures:
        bar.set_postfix(failed=len(plan.failures), refresh=False)
    with bar, logging_redirect_tqdm() if progress else nullcontext():
        for index, job in enumerate(plan.jobs):
            begun = time.perf_counter()
            try:
                reason = _restore_file(job.source, job.output, read, restore)
            except OSError as exc:
                report.stopped = exc
                seconds = time.perf_counter() - begun
                report.fail(
                    job.source, f"cannot write {job.output}: {exc.strerror or exc}", seconds
                )
                for later in plan.jobs[index + 1 :]:
                    report.fail(later.source, f"not attempted: the batch stopped at {job.output}")
                break
            seconds = time.perf_counter() - begun
            if reason is None:
                report.results.append(ImageResult(job.source, job.output, seconds))
            else:
                report.fail(job.source, reason, seconds)
                bar.set_postfix(failed=len(report.failed), refresh=False)
            bar.update()
    report.seconds = time.perf_counter() - started
    return report


def _restore_file(
    file: Path,
    out: Path,
    read: Callable[[Path], np.ndarray],
    restore: Callable[[torch.Tensor], torch.Tensor],
) -> str | None:
    """Read ``file``, ``restore`` it and write the PNG ``out``.

    Args:
        file: the input image.
        out: the output PNG (written atomically).
        read: path -> (H, W, 3) uint8 (:func:`girml.core.imageio.read_image` with the caps).
        restore: (1,3,H,W) float in [0, 1] -> the same, restored.

    Returns:
        None when restored, else why not.

    Raises:
        OSError: a write error that stops the batch (:data:`_BATCH_ERRNOS`, or the output
            folder cannot be made), naming the output.
    """
    try:
        image = read(file)
    except ImageTooLarge as exc:
        option = "--" + exc.limit.replace("_", "-")
        return f"{exc.reason} (raise it with {option})"
    except ImageReadError as exc:
        return exc.reason
    except MemoryError:
        return "out of memory while decoding it"
    try:
        restored = to_uint8(restore(to_tensor(image)))
    except (MemoryError, torch.cuda.OutOfMemoryError):
        size = f"{image.shape[1]}x{image.shape[0]}"
        return f"out of memory restoring {size} (try a smaller --tile)"
    try:
        write_png(out, restored)
    except OSError as exc:
        if exc.errno in _BATCH_ERRNOS or not out.parent.is_dir():
            raise
        return f"cannot write {out}: {exc.strerror or exc}"
    log.debug("restored %s -> %s (%dx%d)", file, out, image.shape[1], image.shape[0])
    return None


def write_summary(
    path: Path, report: RestoreReport, model: Mapping[str, Any], device: str, out_dir: Path
) -> None:
    """Write ``girml restore --json``'s summary of ``report`` to ``path``, atomically.

    One record per input (``input``, ``output``: the PNG or null, ``model``: its ``uri``,
    ``version`` and ``folder``, ``seconds``, ``status``: ``ok`` or ``error``, ``error``: the
    reason or null), then the totals; ``stopped`` names a write error that stopped the batch.

    Args:
        path: the JSON file (its folder is created).
        report: what :func:`restore_plan` returned.
        model: the model as :meth:`girml.restore_model.RestoreModel.as_json` gives it.
        device: the device it ran on.
        out_dir: the output folder.
    """
    short = {key: model.get(key) for key in ("uri", "version", "folder")}
    images = [
        {
            "input": str(result.input),
            "output": None if result.output is None else str(result.output),
            "model": short,
            "seconds": round(result.seconds, 4),
            "status": "ok" if result.ok else "error",
            "error": None if result.error is None else mask_text(result.error),
        }
        for result in report.results
    ]
    summary = {
        "model": dict(model),
        "device": device,
        "out_dir": str(out_dir),
        "images": images,
        "totals": {
            "images": len(report.results),
            "ok": len(report.restored),
            "failed": len(report.failed),
            "seconds": round(report.seconds, 3),
        },
        "stopped": None if report.stopped is None else mask_text(_os_error_text(report.stopped)),
    }
    write_text(path, json.dumps(summary, indent=2) + "\n")


def _os_error_text(exc: OSError) -> str:
    """``path: reason`` for an OS error that names a file, else its text."""
    reason = exc.strerror or str(exc)
    return f"{exc.filename}: {reason}" if exc.filename else reason


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
