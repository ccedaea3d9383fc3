"""The benchmark harness: run any restorer over the bench suites and score every image.

A restorer is a function ``(H,W,3) uint8 -> (H,W,3) uint8``: the model (through
:func:`model_restorer`), a classical baseline from :data:`girml.baselines.BASELINES`, a
specialist or the registry's champion all go through :func:`evaluate_method`, so their rows are
comparable. Outside restorers (:mod:`girml.evaluation.methods`) go through
:func:`evaluate_batches`, which scores the same way but hands the restorer a batch of images (a
program restores a folder at a time) and records an image it gets no usable output for as an
:class:`ImageFailure` instead of stopping. Bench layout (written by :mod:`girml.data.synthesize`):
``<bench>/<suite>/<family>/{gt,lq}/<id>.png`` with one ``recipes.jsonl`` per family folder.

Scores follow :mod:`girml.metrics` (BasicSR PSNR/SSIM on 8-bit images, ``crop_border`` from the
config). PSNR is clipped to :data:`MAX_PSNR` dB: a perfect output (MSE 0) would otherwise give
``inf``, which breaks every mean and is not valid JSON. This is also the ceiling of the
``clean`` family (input = ground truth): its ``psnr_y_input`` is exactly :data:`MAX_PSNR`, and
an output left unchanged scores it too.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from girml.baselines import BASELINES
from girml.config import EvaluateConfig
from girml.data.synthesize import SUITES, WHOLE_SUITE, read_manifest
from girml.ensemble import with_self_ensemble
from girml.imageio import IMAGE_SUFFIXES, ImageReadError, read_image, to_tensor, to_uint8
from girml.inference import restore_image
from girml.metrics import (
    LpipsMetric,
    NiqeModel,
    block_shift,
    check_rgb_uint8,
    fit_niqe,
    niqe,
    psnr,
    ssim,
)
from girml.records import BenchPair, read_jsonl
from girml.training.data import match_size

log = logging.getLogger(__name__)

RestoreFn = Callable[[np.ndarray], np.ndarray]
# (items, their inputs) -> one outcome per input: the output, or the exception saying why none
BatchRestoreFn = Callable[[Sequence["BenchItem"], Sequence[np.ndarray]], list[Any]]

MAX_PSNR = 100.0
REAL_SUITE = "real"
REAL_FAMILY = "real"
# The suites gir_score averages over (DESIGN.md, "Metric names").
GIR_SUITES = ("single-id", "single-ood", "mixed", "unseen")
# WHOLE_SUITE: whole test photos restored as `girml restore` restores them
# (girml.evaluation.whole); a Bench holds either the crop suites or this one.
MODEL_METHOD = "model"


@dataclass(frozen=True)
class BenchItem:
    """One benchmark image.

    Attributes:
        suite: suite folder name (``single-id`` ...) or ``real``.
        family: family folder name (``noise``, ``blur+noise``) or ``real``.
        id: pair id from ``recipes.jsonl``; for real photos the path relative to ``real_dir``.
        source_id: id of the clean photo the crop comes from (empty for real photos).
        level: the recipe's level (``id`` or ``ood``; empty for real photos).
        lq: the degraded image file.
        gt: the ground-truth file, None for real photos.
    """

    suite: str
    family: str
    id: str
    source_id: str
    level: str
    lq: Path
    gt: Path | None


def _suite_order(name: str) -> tuple[int, str]:
    return (SUITES.index(name) if name in SUITES else len(SUITES), name)


def _read_records(jsonl: Path) -> list[BenchPair]:
    records = read_jsonl(jsonl, BenchPair)
    if not records:
        raise ValueError(f"{jsonl}: no benchmark records")
    return records


def scan_bench(bench_dir: Path) -> list[BenchItem]:
    """Every benchmark pair under ``bench_dir``, suites in the design's order, then by name.

    Args:
        bench_dir: folder holding ``<suite>/<family>/recipes.jsonl``.

    Returns:
        The items, ordered by suite (``single-id``, ``single-ood``, ``mixed``, ``unseen``,
        ``unseen-content``, then unknown suites alphabetically), family name, then file order.

    Raises:
        FileNotFoundError: ``bench_dir`` does not exist or holds no family folder.
        ValueError: a family folder without ``recipes.jsonl`` or a malformed record (the message
            names the file and line).
    """
    bench_dir = Path(bench_dir)
    if not bench_dir.is_dir():
        raise FileNotFoundError(f"benchmark folder {bench_dir} not found: run `girml synthesize`")
    suites = sorted(
        (p for p in bench_dir.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: _suite_order(p.name),
    )
    items = []
    for suite_dir in suites:
        for family_dir in sorted(suite_dir.iterdir()):
            if not family_dir.is_dir() or family_dir.name.startswith("."):
                continue
            jsonl = family_dir / "recipes.jsonl"
            if not jsonl.is_file():
                raise ValueError(f"{family_dir}: benchmark family folder without recipes.jsonl")
            for rec in _read_records(jsonl):
                items.append(
                    BenchItem(
                        suite=suite_dir.name,
                        family=family_dir.name,
                        id=rec.id,
                        source_id=rec.source_id,
                        level=rec.recipe.level,
                        lq=family_dir / rec.lq,
                        gt=family_dir / rec.gt,
                    )
                )
    if not items:
        raise FileNotFoundError(f"{bench_dir} holds no <suite>/<family>/recipes.jsonl")
    return items


def scan_real(real_dir: Path) -> list[BenchItem]:
    """The ``real`` suite: every image file under ``real_dir`` (recursive, hidden skipped).

    Raises:
        FileNotFoundError: ``real_dir`` is not a folder.
    """
    real_dir = Path(real_dir)
    if not real_dir.is_dir():
        raise FileNotFoundError(f"evaluate.real_dir {real_dir} is not a folder")
    files = []
    for path in sorted(real_dir.rglob("*")):
        rel = path.relative_to(real_dir)
        hidden = any(part.startswith(".") for part in rel.parts)
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not hidden:
            files.append(path)
    return [
        BenchItem(REAL_SUITE, REAL_FAMILY, p.relative_to(real_dir).as_posix(), "", "", p, None)
        for p in files
    ]


class Bench:
    """The benchmark of one folder, with each pair's input-vs-GT scores computed once.

    Evaluating several methods over the same :class:`Bench` reads every pair again (decoding
    is cheap) but scores each degraded input against its GT only once per ``crop_border``.

    Args:
        bench_dir: folder holding ``<suite>/<family>/recipes.jsonl`` (see :func:`scan_bench`).
        whole: False (default): every suite but :data:`WHOLE_SUITE` (crops, scored with the
            evaluate settings); True: that suite alone (see :mod:`girml.evaluation.whole`).

    Raises:
        FileNotFoundError: no pair of the kind asked for (see :func:`scan_bench`).
    """

    def __init__(self, bench_dir: str | os.PathLike, whole: bool = False) -> None:
        self.root = Path(bench_dir)
        self.items = [
            item for item in scan_bench(self.root) if (item.suite == WHOLE_SUITE) == whole
        ]
        if not self.items:
            kind = f"the {WHOLE_SUITE} suite" if whole else "a crop suite"
            raise FileNotFoundError(f"{self.root} holds no pair of {kind}")
        self._inputs: dict[tuple[Path, int], dict[str, float]] = {}

    def __len__(self) -> int:
        return len(self.items)

    def load(self, item: BenchItem) -> tuple[np.ndarray, np.ndarray]:
        """Decode a pair as ``(lq, gt)`` (H,W,3) uint8; a smaller LQ is bicubic-resized to GT.

        Raises:
            ImageReadError: a missing or broken file (the message names it).
        """
        if item.gt is None:
            raise ValueError(f"{item.lq}: a real photo has no ground truth")
        gt = read_image(item.gt)
        lq = read_image(item.lq)
        if lq.shape != gt.shape:
            lq = to_uint8(match_size(to_tensor(lq), gt.shape[:2]))
        return lq, gt

    def input_scores(
        self, item: BenchItem, lq: np.ndarray, gt: np.ndarray, crop_border: int
    ) -> dict[str, float]:
        """``psnr_y_input`` and ``ssim_y_input`` of the degraded input, cached per item."""
        key = (item.lq, crop_border)
        if key not in self._inputs:
            self._inputs[key] = {
                "psnr_y_input": clipped_psnr(lq, gt, crop_border, test_y=True),
                "ssim_y_input": ssim(lq, gt, crop_border, test_y=True),
            }
        return self._inputs[key]


def clipped_psnr(a: np.ndarray, b: np.ndarray, crop_border: int, test_y: bool) -> float:
    """:func:`girml.metrics.psnr` clipped to :data:`MAX_PSNR` dB (identical images score it)."""
    return min(psnr(a, b, crop_border, test_y=test_y), MAX_PSNR)


def model_restorer(
    model: nn.Module, tile: int | None, self_ensemble: int = 1, overlap: int | None = None
) -> RestoreFn:
    """Wrap a restoration network as a uint8 restorer (whole image, or tiled when ``tile``).

    Args:
        model: (B,3,H,W) float in [0,1] -> same, in eval mode.
        tile: tile side, or None for whole-image inference.
        self_ensemble: views averaged per image (:class:`girml.ensemble.SelfEnsemble`; 1: none).
        overlap: tile overlap in pixels; None: ``tile // 8``.

    Returns:
        ``fn(lq)``: (H,W,3) uint8 -> (H,W,3) uint8.
    """
    if overlap is None:
        overlap = tile // 8 if tile else 0
    model = with_self_ensemble(model, self_ensemble)

    def restore(lq: np.ndarray) -> np.ndarray:
        return to_uint8(restore_image(model, to_tensor(lq), tile, overlap))

    return restore


def _niqe_or_nan(image: np.ndarray, model: NiqeModel, what: str) -> float:
    try:
        return niqe(image, model)
    except ValueError as exc:
        log.warning("NIQE undefined for %s (%s): NaN", what, exc)
        return math.nan


def _lpips_or_nan(metric: LpipsMetric, out: np.ndarray, gt: np.ndarray, what: str) -> float:
    try:
        return metric.score(out, gt)
    except ValueError as exc:
        log.warning("LPIPS undefined for %s (%s): NaN", what, exc)
        return math.nan


def _restore(restore_fn: RestoreFn, lq: np.ndarray, method: str, path: Path) -> np.ndarray:
    try:
        out = restore_fn(lq)
    except Exception as exc:
        raise RuntimeError(f"method {method!r} failed on {path}: {exc}") from exc
    return _checked_output(out, lq, method, path)


def _checked_output(out: Any, lq: np.ndarray, method: str, path: Path) -> np.ndarray:
    """``out`` if it is an (H,W,3) uint8 array of ``lq``'s shape, else TypeError/ValueError."""
    check_rgb_uint8(f"output of {method!r} for {path}", out)
    if out.shape != lq.shape:
        raise ValueError(f"method {method!r} returned {out.shape} for {path}, expected {lq.shape}")
    return out


def _bench_row(
    bench: Bench,
    item: BenchItem,
    restore_fn: RestoreFn,
    cfg: EvaluateConfig,
    niqe_model: NiqeModel,
    lpips: LpipsMetric | None,
    method: str,
) -> dict[str, Any]:
    lq, gt = bench.load(item)
    out = _restore(restore_fn, lq, method, item.lq)
    return _bench_scores(bench, item, lq, gt, out, cfg, niqe_model, lpips, method)


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
    crop = cfg.crop_border
    row: dict[str, Any] = {
        "psnr": clipped_psnr(out, gt, crop, test_y=False),
        "ssim": ssim(out, gt, crop),
        "psnr_y": clipped_psnr(out, gt, crop, test_y=True),
        "ssim_y": ssim(out, gt, crop, test_y=True),
        **bench.input_scores(item, lq, gt, crop),
        "niqe": _niqe_or_nan(out, niqe_model, f"{method} on {item.lq}"),
    }
    if lpips is not None:
        row["lpips"] = _lpips_or_nan(lpips, out, gt, f"{method} on {item.lq}")
    if item.suite == WHOLE_SUITE:  # a photo: the patch metric
        row["block_shift"] = block_shift(out, gt)
    return row


def _real_row(
    item: BenchItem,
    restore_fn: RestoreFn,
    niqe_model: NiqeModel,
    lpips: LpipsMetric | None,
    method: str,
) -> dict[str, Any] | None:
    lq = _read_real(item)
    if lq is None:
        return None
    out = _restore(restore_fn, lq, method, item.lq)
    return _real_scores(item, out, niqe_model, lpips, method)


def _read_real(item: BenchItem) -> np.ndarray | None:
    """A real photo's pixels, or None (with a warning naming it) when it cannot be read."""
    try:
        return read_image(item.lq)
    except ImageReadError as exc:
        log.warning("skipping real photo %s", exc)
        return None


def _real_scores(
    item: BenchItem, out: np.ndarray, niqe_model: NiqeModel, lpips: LpipsMetric | None, method: str
) -> dict[str, Any]:
    """The score columns of a real photo's output ``out``: NIQE, every other one NaN."""
    row: dict[str, Any] = dict.fromkeys(
        ("psnr", "ssim", "psnr_y", "ssim_y", "psnr_y_input", "ssim_y_input"), math.nan
    )
    row["niqe"] = _niqe_or_nan(out, niqe_model, f"{method} on {item.lq}")
    if lpips is not None:
        row["lpips"] = math.nan
    return row


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
    PSNRs are clipped to :data:`MAX_PSNR`. Real photos (``cfg.real_dir``, suite and family
    ``real``) have no GT: every column but ``niqe`` is NaN.

    Args:
        restore_fn: (H,W,3) uint8 -> (H,W,3) uint8 of the same shape.
        bench: a :class:`Bench` (reuse it across methods to score inputs once) or its folder.
        cfg: ``crop_border`` and ``real_dir`` are read.
        niqe_model: pristine NIQE model (see :func:`fit_pristine_niqe`).
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
            if item.gt is None:
                scores = _real_row(item, restore_fn, niqe_model, lpips, method)
            else:
                scores = _bench_row(bench, item, restore_fn, cfg, niqe_model, lpips, method)
            if scores is not None:
                rows.append({**_row_ident(item, method), **scores})
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


def per_image(restore_fn: RestoreFn) -> BatchRestoreFn:
    """A :data:`BatchRestoreFn` that calls ``restore_fn`` on each image, keeping its exceptions.

    Args:
        restore_fn: (H,W,3) uint8 -> (H,W,3) uint8.

    Returns:
        ``fn(items, lqs)``: per input, ``restore_fn``'s output or the exception it raised.
    """

    def restore(items: Sequence[BenchItem], lqs: Sequence[np.ndarray]) -> list[Any]:
        outcomes: list[Any] = []
        for lq in lqs:
            try:
                outcomes.append(restore_fn(lq))
            except Exception as exc:  # an outside restorer may raise anything; reported per image
                outcomes.append(exc)
        return outcomes

    return restore


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
                    scores = _real_scores(item, out, niqe_model, lpips, method)
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


def usable_output(outcome: Any, lq: np.ndarray, method: str, path: Path) -> np.ndarray | Exception:
    """A restorer's outcome for ``lq`` checked (see :func:`_checked_output`), or the exception
    that says why it is unusable (the restorer's own, or the check's)."""
    if isinstance(outcome, Exception):
        return outcome
    try:
        return _checked_output(outcome, lq, method, path)
    except (TypeError, ValueError) as exc:
        return exc


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
