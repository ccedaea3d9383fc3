"""What the interpret stage reads: the benchmark, the evaluate stage's outputs, the model's
restorations of the chosen benchmark images.

:func:`load_inputs` reads the files; :func:`select_items` picks the images of the
representation section, :func:`bench_categories` their content categories and
:func:`run_samples` restores them once, keeping one layer's pooled features on the way.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from girml.core.imageio import to_tensor, to_uint8
from girml.data.records import BenchContent, read_jsonl
from girml.data.synthesize import read_manifest
from girml.evaluation.bench import Bench, BenchItem
from girml.evaluation.scores import clipped_psnr
from girml.evaluation.study import read_per_image
from girml.interpret.features import pooled_features

FEATURE_BATCH = 16
UNKNOWN_CATEGORY = "unknown"


@dataclass(frozen=True)
class StageInputs:
    """The files the stage reads: the benchmark and the evaluate stage's outputs (None: missing)."""

    bench: Bench
    eval_metrics: dict[str, Any] | None
    per_family: list[dict[str, Any]] | None
    per_image: list[dict[str, Any]] | None = None


def load_inputs(
    bench_dir: Path,
    eval_json: Path | None,
    per_family_csv: Path | None,
    per_image_csv: Path | None = None,
) -> StageInputs:
    """Read the benchmark, ``eval.json``, ``per_family.csv`` and ``per_image.csv``.

    Args:
        bench_dir: the benchmark (``<suite>/<family>/recipes.jsonl``).
        eval_json: ``metrics/eval.json``; None or a missing file gives None.
        per_family_csv: ``metrics/per_family.csv``; None or a missing file gives None.
        per_image_csv: ``metrics/per_image.csv``; None or a missing file gives None.

    Raises:
        FileNotFoundError, ValueError: no or malformed benchmark (see
            :func:`girml.evaluation.bench.scan_bench`); ValueError also for a malformed
            ``per_image.csv`` (see :func:`girml.evaluation.study.read_per_image`).
    """
    bench = Bench(bench_dir)
    eval_metrics = None
    if eval_json is not None and Path(eval_json).is_file():
        eval_metrics = json.loads(Path(eval_json).read_text(encoding="utf-8"))
    per_family = None
    if per_family_csv is not None and Path(per_family_csv).is_file():
        per_family = read_per_family(per_family_csv)
    per_image = None
    if per_image_csv is not None and Path(per_image_csv).is_file():
        per_image = read_per_image(Path(per_image_csv))
    return StageInputs(bench, eval_metrics, per_family, per_image)


def read_per_family(path: Path) -> list[dict[str, Any]]:
    """Rows of ``metrics/per_family.csv``; numeric cells as floats (empty cells NaN)."""
    with Path(path).open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    text = {"method", "suite", "family"}
    return [
        {k: (v if k in text else float(v) if v else math.nan) for k, v in row.items()}
        for row in rows
    ]


def select_items(items: Sequence[BenchItem], per_group: int) -> list[BenchItem]:
    """The first ``per_group`` items of every (suite, family), in bench order.

    The benchmark's crops are interleaved across photos, so the first ones span many photos.
    """
    if per_group < 1:
        raise ValueError(f"per_group must be >= 1, got {per_group}")
    taken: dict[tuple[str, str], int] = {}
    out = []
    for item in items:
        key = (item.suite, item.family)
        if item.gt is not None and taken.get(key, 0) < per_group:
            taken[key] = taken.get(key, 0) + 1
            out.append(item)
    return out


def bench_categories(bench_dir: Path, clean_dir: Path | None = None) -> dict[tuple[str, ...], str]:
    """Content category of every benchmark pair, keyed by ``(suite, family, id)``.

    Read from the ``category`` field of each ``recipes.jsonl`` record; for records without one
    (older benchmarks), from ``clean_dir/manifest.csv`` by ``source_id`` when given, else
    ``unknown``.
    """
    by_source: dict[str, str] = {}
    manifest = Path(clean_dir) / "manifest.csv" if clean_dir is not None else None
    if manifest is not None and manifest.is_file():
        by_source = {im.id: im.category for im in read_manifest(manifest, manifest.parent)}
    out: dict[tuple[str, ...], str] = {}
    for jsonl in sorted(Path(bench_dir).glob("*/*/recipes.jsonl")):
        suite, family = jsonl.parent.parent.name, jsonl.parent.name
        for rec in read_jsonl(jsonl, BenchContent):
            category = rec.category or by_source.get(str(rec.source_id))
            out[(suite, family, rec.id)] = category or UNKNOWN_CATEGORY
    return out


@dataclass(frozen=True)
class Sample:
    """A benchmark image with the model's output: (H,W,3) uint8 arrays and PSNR-Y scores."""

    item: BenchItem
    category: str
    lq: np.ndarray
    gt: np.ndarray
    restored: np.ndarray
    psnr_in: float
    psnr_out: float

    @property
    def group(self) -> str:
        return f"{self.item.suite}/{self.item.family}"

    @property
    def gain(self) -> float:
        return self.psnr_out - self.psnr_in


def run_samples(
    model: nn.Module,
    bench: Bench,
    items: Sequence[BenchItem],
    categories: Mapping[tuple[str, ...], str],
    layer: str,
) -> tuple[np.ndarray, list[Sample]]:
    """Restore ``items`` once, reading ``layer``'s pooled features on the way.

    Consecutive images of one size are batched (up to 16).

    Returns:
        (N,C) float32 features and one :class:`Sample` per item, in order.
    """
    if not items:
        raise ValueError("no benchmark image with ground truth to interpret")
    pairs = [bench.load(item) for item in items]
    feats: list[np.ndarray] = []
    restored: list[np.ndarray] = []
    start = 0
    while start < len(pairs):
        stop = start + 1
        shape = pairs[start][0].shape
        while stop < len(pairs) and stop - start < FEATURE_BATCH and pairs[stop][0].shape == shape:
            stop += 1
        batch = torch.cat([to_tensor(lq) for lq, _ in pairs[start:stop]])
        pooled, out = pooled_features(model, batch, layer)
        feats.append(pooled.numpy())
        restored += [to_uint8(out[i : i + 1]) for i in range(out.shape[0])]
        start = stop
    samples = [
        Sample(
            item=item,
            category=categories.get((item.suite, item.family, item.id), UNKNOWN_CATEGORY),
            lq=lq,
            gt=gt,
            restored=out,
            psnr_in=clipped_psnr(lq, gt, 0, test_y=True),
            psnr_out=clipped_psnr(out, gt, 0, test_y=True),
        )
        for item, (lq, gt), out in zip(items, pairs, restored, strict=True)
    ]
    return np.concatenate(feats), samples
