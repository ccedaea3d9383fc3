"""The benchmark harness: run any restorer over the bench suites and score every image.

Every restorer (:mod:`girml.evaluation.restorers`) goes through :func:`evaluate_method`, so their
rows are comparable: the model, the classical baselines (:func:`evaluate_baselines`), a
specialist or the registry's champion. Outside restorers (:mod:`girml.evaluation.methods`) go
through :func:`evaluate_batches`, which scores the same way but hands the restorer a batch of
images (a program restores a folder at a time) and records an image it gets no usable output
for as an :class:`ImageFailure` instead of stopping. The bench is read by
:mod:`girml.evaluation.bench`, each output scored by :mod:`girml.evaluation.scores`.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from tqdm import tqdm

from girml.baselines import BASELINES
from girml.config import CLEAN_FAMILY, EvaluateConfig
from girml.core.imageio import ImageReadError, read_image
from girml.data.synthesize import WHOLE_SUITE
from girml.evaluation.bench import Bench, BenchItem, scan_real
from girml.evaluation.restorers import BatchRestoreFn, RestoreFn, checked_output, usable_output
from girml.evaluation.scores import gt_scores, real_scores
from girml.metrics import LpipsMetric, NiqeModel

log = logging.getLogger(__name__)

MODEL_METHOD = "model"


def _restore(restore_fn: RestoreFn, lq: np.ndarray, method: str, path: Path) -> np.ndarray:
    try:
        out = restore_fn(lq)
    except Exception as exc:
        raise RuntimeError(f"method {method!r} failed on {path}: {exc}") from exc
    return checked_output(out, lq, method, path)


def _bench_scores(
    bench: Bench,
    item: BenchItem,
    lq: np.ndarray,
    gt: np.ndarray,
    out: np.ndarray,
    cfg: EvaluateConfig,
    niqe_model: NiqeModel,
    lpips: LpipsMetric | None,
    method: str,
) -> dict[str, Any]:
    """The score columns of one benchmark image's output ``out`` (see :func:`evaluate_method`)."""
    inputs = bench.input_scores(item, lq, gt, cfg.crop_border)
    what = f"{method} on {item.lq}"
    # the patch metric: on whole photos (a step between tiles), and on every clean image, crops
    # too (a dim but correctly exposed crop brightened is harm: "dim is not dark")
    patches = item.suite == WHOLE_SUITE or item.family == CLEAN_FAMILY
    return gt_scores(out, gt, inputs, cfg.crop_border, niqe_model, lpips, what, patches=patches)


def _read_real(item: BenchItem) -> np.ndarray | None:
    """A real photo's pixels, or None (with a warning naming it) when it cannot be read."""
    try:
        return read_image(item.lq)
    except ImageReadError as exc:
        log.warning("skipping real photo %s", exc)
        return None


def _row(
    bench: Bench,
    item: BenchItem,
    restore_fn: RestoreFn,
    cfg: EvaluateConfig,
    niqe_model: NiqeModel,
    lpips: LpipsMetric | None,
    method: str,
) -> dict[str, Any] | None:
    """The scores of ``restore_fn``'s output for ``item``; None for an unreadable real photo."""
    if item.gt is None:
        lq = _read_real(item)
        if lq is None:
            return None
        out = _restore(restore_fn, lq, method, item.lq)
        return real_scores(out, niqe_model, lpips, f"{method} on {item.lq}")
    lq, gt = bench.load(item)
    out = _restore(restore_fn, lq, method, item.lq)
    return _bench_scores(bench, item, lq, gt, out, cfg, niqe_model, lpips, method)


def evaluate_method(
    restore_fn: RestoreFn,
    bench: Bench | str | os.PathLike,
    cfg: EvaluateConfig,
    niqe_model: NiqeModel,
    lpips: LpipsMetric | None,
    *,
    method: str = MODEL_METHOD,
) -> list[dict[str, Any]]:
    """Run one restorer over every benchmark image (and the real photos) and score the outputs.

    Runs under ``torch.inference_mode`` with a progress bar. Columns of each row: ``method,
    suite, family, id, source_id, level, psnr, ssim`` (RGB), ``psnr_y, ssim_y`` (BT.601 Y),
    ``psnr_y_input, ssim_y_input`` (the degraded input against GT), ``niqe`` (of the output;
    NaN with a logged warning when undefined) and ``lpips`` (only when ``lpips`` is given).
    PSNRs are clipped to :data:`~girml.evaluation.scores.MAX_PSNR`. Real photos
    (``cfg.real_dir``, suite and family ``real``) have no GT: every column but ``niqe`` is NaN.

    Args:
        restore_fn: (H,W,3) uint8 -> (H,W,3) uint8 of the same shape.
        bench: a :class:`Bench` (reuse it across methods to score inputs once) or its folder.
        cfg: ``crop_border`` and ``real_dir`` are read.
        niqe_model: pristine NIQE model (see
            :func:`~girml.evaluation.scores.fit_pristine_niqe`).
        lpips: the LPIPS metric, or None to leave the column out.
        method: the ``method`` column of every row.

    Returns:
        One row per image, in bench order, then the real photos.

    Raises:
        ImageReadError: a broken benchmark image (validated data: failing is right). A broken
            real photo is skipped with a warning naming it instead.
        RuntimeError, ValueError: the restorer failed or returned a wrong shape or dtype.
    """
    bench = bench if isinstance(bench, Bench) else Bench(bench)
    items = _all_items(bench, cfg)
    rows = []
    with torch.inference_mode():
        for item in tqdm(items, desc=f"evaluate {method}", unit="img", leave=False):
            scores = _row(bench, item, restore_fn, cfg, niqe_model, lpips, method)
            if scores is not None:
                rows.append({**_row_ident(item, method), **scores})
    return rows


def evaluate_baselines(
    names: Sequence[str],
    bench: Bench | str | os.PathLike,
    cfg: EvaluateConfig,
    niqe_model: NiqeModel,
    lpips: LpipsMetric | None,
) -> list[dict[str, Any]]:
    """Run classical baselines through :func:`evaluate_method` on every suite.

    Args:
        names: names in :data:`girml.baselines.BASELINES`; each becomes its rows' ``method``.
        bench, cfg, niqe_model, lpips: as for :func:`evaluate_method`.

    Returns:
        The rows of every baseline, in ``names`` order.

    Raises:
        KeyError: an unknown name (checked before anything runs; the message lists them all).
    """
    restorers = {name: BASELINES.get(name) for name in names}
    bench = bench if isinstance(bench, Bench) else Bench(bench)
    rows = []
    for name, fn in restorers.items():
        rows += evaluate_method(fn, bench, cfg, niqe_model, lpips, method=name)
    return rows


def _all_items(bench: Bench, cfg: EvaluateConfig) -> list[BenchItem]:
    """The bench's items, then the real photos of ``cfg.real_dir`` (when set)."""
    items = list(bench.items)
    if cfg.real_dir is not None:
        items += scan_real(Path(cfg.real_dir))
    return items


@dataclass(frozen=True)
class ImageFailure:
    """An image a method gave no usable output for (see :func:`evaluate_batches`).

    Attributes:
        suite, family, id: the image, as in its rows' columns.
        path: its degraded input file.
        message: why: the restorer's exception, an unreadable output file, a wrong shape.
    """

    suite: str
    family: str
    id: str
    path: Path
    message: str

    def describe(self) -> str:
        """``<suite>/<family>/<id>: <message>``."""
        return f"{self.suite}/{self.family}/{self.id}: {self.message}"


@dataclass(frozen=True)
class MethodRows:
    """What :func:`evaluate_batches` returns: the scored rows and the images left unscored."""

    rows: list[dict[str, Any]]
    failures: list[ImageFailure]


def _batches(items: Sequence[BenchItem], batch: str) -> Iterator[list[BenchItem]]:
    """``items`` in runs of one (suite, family) (``family``), or all in one (``all``)."""
    if batch == "all":
        yield list(items)
        return
    for _, group in itertools.groupby(items, key=lambda item: (item.suite, item.family)):
        yield list(group)


def evaluate_batches(
    restore_batch: BatchRestoreFn,
    bench: Bench | str | os.PathLike,
    cfg: EvaluateConfig,
    niqe_model: NiqeModel,
    lpips: LpipsMetric | None,
    *,
    method: str,
    batch: Literal["family", "all"] = "family",
) -> MethodRows:
    """Like :func:`evaluate_method`, for a restorer that takes a batch and may fail per image.

    The images (the bench's, then the real photos) go to ``restore_batch`` one (suite, family)
    at a time, or all at once; the inputs are what :func:`evaluate_method` hands a restorer
    (a smaller LQ resized to its GT). An outcome that is an exception, not an (H,W,3) uint8
    array or not of its input's shape becomes an :class:`ImageFailure` (logged as a warning)
    and the other images are scored as usual, with the same columns.

    Args:
        restore_batch: (items, their (H,W,3) uint8 inputs) -> one outcome per input.
        bench, cfg, niqe_model, lpips, method: as for :func:`evaluate_method`.
        batch: ``family``: one call per (suite, family); ``all``: one call with every image
            (all inputs held in memory at once).

    Returns:
        The rows of the scored images in bench order, and the failures in the same order.

    Raises:
        ImageReadError: a broken benchmark image (a broken real photo is skipped, as in
            :func:`evaluate_method`).
        ValueError: ``restore_batch`` returned a different number of outcomes than inputs.
        Exception: whatever ``restore_batch`` itself raises (a program that exits non-zero).
    """
    bench = bench if isinstance(bench, Bench) else Bench(bench)
    items = _all_items(bench, cfg)
    rows: list[dict[str, Any]] = []
    failures: list[ImageFailure] = []
    with (
        torch.inference_mode(),
        tqdm(total=len(items), desc=f"evaluate {method}", unit="img", leave=False) as bar,
    ):
        for group in _batches(items, batch):
            loaded = []
            for item in group:
                lq, gt = _batch_input(bench, item)
                if lq is not None:
                    loaded.append((item, lq, gt))
            outcomes = restore_batch([item for item, _, _ in loaded], [lq for _, lq, _ in loaded])
            if len(outcomes) != len(loaded):
                raise ValueError(
                    f"method {method!r} gave {len(outcomes)} outputs for {len(loaded)} images"
                )
            for (item, lq, gt), outcome in zip(loaded, outcomes, strict=True):
                out = usable_output(outcome, lq, method, item.lq)
                if isinstance(out, Exception):
                    failures.append(_failure(item, out, method))
                elif gt is None:
                    scores = real_scores(out, niqe_model, lpips, f"{method} on {item.lq}")
                    rows.append({**_row_ident(item, method), **scores})
                else:
                    scores = _bench_scores(bench, item, lq, gt, out, cfg, niqe_model, lpips, method)
                    rows.append({**_row_ident(item, method), **scores})
            bar.update(len(group))
    return MethodRows(rows, failures)


def _batch_input(bench: Bench, item: BenchItem) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``(lq, gt)`` as :func:`evaluate_method` scores them; ``(None, None)`` for an unreadable
    real photo, ``(lq, None)`` for a readable one."""
    if item.gt is None:
        return _read_real(item), None
    return bench.load(item)


def _failure(item: BenchItem, exc: Exception, method: str) -> ImageFailure:
    """Record (and log) that ``method`` gave no usable output for ``item``."""
    failure = ImageFailure(
        item.suite, item.family, item.id, item.lq, f"{type(exc).__name__}: {exc}"
    )
    log.warning("method %r: no output for %s", method, failure.describe())
    return failure


def _row_ident(item: BenchItem, method: str) -> dict[str, Any]:
    """The columns of a row that say whose score it is: method, suite, family, image, level."""
    return {
        "method": method,
        "suite": item.suite,
        "family": item.family,
        "id": item.id,
        "source_id": item.source_id,
        "level": item.level,
    }
