"""Restore image files with a trained model: the library side of ``girml restore``."""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from girml.imageio import IMAGE_SUFFIXES, ImageReadError, read_image, to_tensor, to_uint8, write_png
from girml.inference import restore_image

log = logging.getLogger(__name__)


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


def _expand(inputs: list[Path], out_dir: Path) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """(file, output folder) jobs for every input, and the inputs that do not exist.

    Folders are searched recursively for files with a suffix in ``IMAGE_SUFFIXES`` (any case,
    hidden files skipped); their outputs keep the sub-folder relative to the input folder.
    """
    jobs: list[tuple[Path, Path]] = []
    missing: list[Path] = []
    for item in inputs:
        if item.is_dir():
            for file in sorted(item.rglob("*")):
                rel = file.relative_to(item)
                hidden = any(part.startswith(".") for part in rel.parts)
                if file.is_file() and file.suffix.lower() in IMAGE_SUFFIXES and not hidden:
                    jobs.append((file, out_dir / rel.parent))
        elif item.is_file():
            jobs.append((item, out_dir))
        else:
            missing.append(item)
    return jobs, missing


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

    An input that is missing or cannot be decoded is logged at ERROR and listed in the report;
    the others are still restored. Outputs are written atomically, so a failure never leaves a
    partial PNG.

    Args:
        inputs: image files and/or folders.
        out_dir: output folder (created).
        model: restoration network in eval mode (as :func:`girml.models.store.load_model`
            returns it).
        tile: tile side in pixels, a multiple of ``model.size_multiple``; None restores whole.
        overlap: pixels shared by neighbouring tiles.
        device: where the model runs (the model is moved there); defaults to the model's
            device.
        batch_tiles: tiles per forward pass, >= 1 (more help on GPUs; 1 is fastest on CPU).

    Raises:
        ValueError: an output would overwrite one of the inputs (``out_dir`` is an input
            folder), or bad ``tile``/``overlap``/``batch_tiles``.
    """
    planned, missing = _plan(inputs, out_dir)
    if device is not None:
        model.to(device)
    report = RestoreReport(failed=_report_missing(missing))
    restore = functools.partial(
        restore_image, model, tile=tile, overlap=overlap, device=device, batch_tiles=batch_tiles
    )
    for file, out in planned:
        _restore_file(file, out, restore, report)
    return report


def _plan(inputs: list[Path], out_dir: Path) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """(input file, output PNG) of every image to restore, and the inputs that do not exist.

    Raises:
        ValueError: an output would overwrite one of the inputs.
    """
    jobs, missing = _expand([Path(p) for p in inputs], Path(out_dir))
    outputs = _output_names(jobs)
    sources = {file.resolve() for file, _ in jobs}
    clobbered = [out for out in outputs if out.resolve() in sources]
    if clobbered:
        raise ValueError(f"output {clobbered[0]} would overwrite an input; choose another out_dir")
    return [(file, out) for (file, _), out in zip(jobs, outputs, strict=True)], missing


def _report_missing(missing: list[Path]) -> list[tuple[Path, str]]:
    """Log each missing input at ERROR; return them as :attr:`RestoreReport.failed` entries."""
    for path in missing:
        log.error("%s: no such file or folder", path)
    return [(path, "no such file or folder") for path in missing]


def _restore_file(
    file: Path, out: Path, restore: Callable[[torch.Tensor], torch.Tensor], report: RestoreReport
) -> None:
    """Read ``file``, ``restore`` it and write the PNG ``out``; record the outcome in ``report``.

    Args:
        file: the input image.
        out: the output PNG (written atomically).
        restore: (1,3,H,W) float in [0, 1] -> the same, restored.
        report: gets ``(file, out)`` when restored, ``(file, reason)`` when unreadable.
    """
    try:
        image = read_image(file)
    except ImageReadError as exc:
        log.error("cannot restore %s", exc)
        report.failed.append((file, exc.reason))
        return
    restored = restore(to_tensor(image))
    write_png(out, to_uint8(restored))
    log.info("restored %s -> %s (%dx%d)", file, out, image.shape[1], image.shape[0])
    report.restored.append((file, out))
