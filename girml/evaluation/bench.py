"""The benchmark on disk: its suites, its images and their degraded-input scores.

Bench layout (written by :mod:`girml.data.synthesize`):
``<bench>/<suite>/<family>/{gt,lq}/<id>.png`` with one ``recipes.jsonl`` per family folder. Real
photos (``evaluate.real_dir``, no ground truth) form the ``real`` suite (:func:`scan_real`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from girml.core.imageio import IMAGE_SUFFIXES, read_image, to_tensor, to_uint8
from girml.data.records import BenchPair, read_jsonl
from girml.data.synthesize import SUITES, WHOLE_SUITE
from girml.evaluation.scores import clipped_psnr
from girml.metrics import ssim
from girml.training.data import match_size

REAL_SUITE = "real"
REAL_FAMILY = "real"
# The suites gir_score averages over (DESIGN.md, "Metric names").
GIR_SUITES = ("single-id", "single-ood", "mixed", "unseen")
# WHOLE_SUITE: whole test photos restored as `girml restore` restores them
# (girml.evaluation.whole); a Bench holds either the crop suites or this one.


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
