"""The score columns of one restored image, and the NIQE reference they are measured against.

Scores follow :mod:`girml.metrics` (BasicSR PSNR/SSIM on 8-bit images, ``crop_border`` from the
config). PSNR is clipped to :data:`MAX_PSNR` dB: a perfect output (MSE 0) would otherwise give
``inf``, which breaks every mean and is not valid JSON. This is also the ceiling of the
``clean`` family (input = ground truth): its ``psnr_y_input`` is exactly :data:`MAX_PSNR`, and
an output left unchanged scores it too. A metric that is undefined for an image (NIQE of a flat
image, LPIPS of one too small) is NaN, with a logged warning.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from girml.core.imageio import read_image
from girml.data.synthesize import read_manifest
from girml.metrics import LpipsMetric, NiqeModel, block_shift, fit_niqe, niqe, psnr, ssim

log = logging.getLogger(__name__)

MAX_PSNR = 100.0
# the columns a real photo (no ground truth) leaves NaN
GT_COLUMNS = ("psnr", "ssim", "psnr_y", "ssim_y", "psnr_y_input", "ssim_y_input")


def clipped_psnr(a: np.ndarray, b: np.ndarray, crop_border: int, test_y: bool) -> float:
    """:func:`girml.metrics.psnr` clipped to :data:`MAX_PSNR` dB (identical images score it)."""
    return min(psnr(a, b, crop_border, test_y=test_y), MAX_PSNR)


def niqe_or_nan(image: np.ndarray, model: NiqeModel, what: str) -> float:
    """NIQE of ``image``, or NaN with a warning naming ``what`` when it is undefined."""
    try:
        return niqe(image, model)
    except ValueError as exc:
        log.warning("NIQE undefined for %s (%s): NaN", what, exc)
        return math.nan


def lpips_or_nan(metric: LpipsMetric, out: np.ndarray, gt: np.ndarray, what: str) -> float:
    """LPIPS of ``out`` against ``gt``, or NaN with a warning naming ``what`` when undefined."""
    try:
        return metric.score(out, gt)
    except ValueError as exc:
        log.warning("LPIPS undefined for %s (%s): NaN", what, exc)
        return math.nan


def gt_scores(
    out: np.ndarray,
    gt: np.ndarray,
    inputs: Mapping[str, float],
    crop_border: int,
    niqe_model: NiqeModel,
    lpips: LpipsMetric | None,
    what: str,
    patches: bool = False,
) -> dict[str, Any]:
    """The score columns of a benchmark image's output ``out`` against its ground truth.

    Args:
        out: the output, (H,W,3) uint8.
        gt: the ground truth, same shape.
        inputs: ``psnr_y_input`` and ``ssim_y_input`` of the degraded input
            (:meth:`girml.evaluation.bench.Bench.input_scores`).
        crop_border: pixels left out at each border for PSNR/SSIM.
        niqe_model: the NIQE pristine model.
        lpips: the LPIPS metric, or None to leave its column out.
        what: how a warning names the image (``"<method> on <file>"``).
        patches: add ``block_shift`` (the patch metric: whole photos and clean images).

    Returns:
        ``psnr, ssim`` (RGB), ``psnr_y, ssim_y`` (BT.601 Y), the input's two, ``niqe``, then
        ``lpips`` and ``block_shift`` when asked for.
    """
    row: dict[str, Any] = {
        "psnr": clipped_psnr(out, gt, crop_border, test_y=False),
        "ssim": ssim(out, gt, crop_border),
        "psnr_y": clipped_psnr(out, gt, crop_border, test_y=True),
        "ssim_y": ssim(out, gt, crop_border, test_y=True),
        **inputs,
        "niqe": niqe_or_nan(out, niqe_model, what),
    }
    if lpips is not None:
        row["lpips"] = lpips_or_nan(lpips, out, gt, what)
    if patches:
        row["block_shift"] = block_shift(out, gt)
    return row


def real_scores(
    out: np.ndarray, niqe_model: NiqeModel, lpips: LpipsMetric | None, what: str
) -> dict[str, Any]:
    """The score columns of a real photo's output ``out``: NIQE, every other one NaN."""
    row: dict[str, Any] = dict.fromkeys(GT_COLUMNS, math.nan)
    row["niqe"] = niqe_or_nan(out, niqe_model, what)
    if lpips is not None:
        row["lpips"] = math.nan
    return row


def fit_pristine_niqe(clean_dir: Path, patch_size: int) -> NiqeModel:
    """Fit the NIQE pristine model on the clean photos outside the test split.

    The benchmark is cut from the ``test`` split, so its ground truth never shapes the
    reference the outputs are scored against.

    Args:
        clean_dir: the collect stage's folder (``manifest.csv`` and ``images/``).
        patch_size: NIQE patch side (``evaluate.niqe_patch_size``); smaller photos are skipped.

    Returns:
        The fitted :class:`~girml.metrics.NiqeModel`.

    Raises:
        FileNotFoundError: no manifest.
        ValueError: no usable photo, or too few sharp patches.
    """
    manifest = Path(clean_dir) / "manifest.csv"
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest} not found: run `girml collect`")
    photos = [
        im
        for im in read_manifest(manifest, Path(clean_dir) / "images")
        if im.split != "test" and min(im.width, im.height) >= patch_size
    ]
    if not photos:
        raise ValueError(
            f"{manifest}: no train/val photo of at least {patch_size} px to fit NIQE on"
        )
    return fit_niqe((read_image(im.path) for im in photos), patch_size=patch_size)
