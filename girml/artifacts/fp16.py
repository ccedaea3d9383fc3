"""The fp16 check of a release: float16 storage is allowed only when no benchmark suite moves.

:func:`measure_fp16` scores the model and its float16-stored copy on the benchmark suites with
the evaluate stage's inference and PSNR-Y (:func:`suite_psnr_y`); :class:`Fp16Check` holds both
and decides against :data:`FP16_TOLERANCE_DB`.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from girml.config import CLEAN_FAMILY, ModelConfig
from girml.models import build_model

if TYPE_CHECKING:
    from girml.evaluation.bench import Bench

FP16_TOLERANCE_DB = 0.01


@dataclass(frozen=True)
class Fp16Check:
    """Mean PSNR-Y per benchmark suite with float32 and with float16-stored weights.

    Attributes:
        fp32, fp16: ``{suite: mean PSNR-Y (dB)}`` (families weighted equally).
        tolerance_db: the largest allowed absolute change of any suite.
    """

    fp32: dict[str, float]
    fp16: dict[str, float]
    tolerance_db: float = FP16_TOLERANCE_DB

    def __post_init__(self) -> None:
        if set(self.fp32) != set(self.fp16) or not self.fp32:
            raise ValueError(
                f"fp32 and fp16 must score the same non-empty suites, got {sorted(self.fp32)} "
                f"and {sorted(self.fp16)}"
            )
        if not self.tolerance_db >= 0:
            raise ValueError(f"tolerance_db must be >= 0, got {self.tolerance_db}")

    @property
    def diffs(self) -> dict[str, float]:
        """``{suite: fp16 - fp32}`` in dB."""
        return {suite: self.fp16[suite] - self.fp32[suite] for suite in self.fp32}

    @property
    def max_abs_diff(self) -> float:
        return max(abs(d) if math.isfinite(d) else math.inf for d in self.diffs.values())

    @property
    def ok(self) -> bool:
        """True when no suite's mean PSNR-Y moved by more than ``tolerance_db``."""
        return self.max_abs_diff <= self.tolerance_db

    def describe(self) -> str:
        parts = ", ".join(f"{s} {d:+.4f}" for s, d in self.diffs.items())
        return f"fp16 - fp32 mean PSNR-Y per suite (dB): {parts}; limit {self.tolerance_db} dB"


def suite_psnr_y(
    model: nn.Module, bench: Bench, crop_border: int = 0, tile: int | None = None
) -> dict[str, float]:
    """Mean PSNR-Y per suite of ``model`` on a benchmark (families weighted equally).

    The same pairs, inference, PSNR and aggregation as the evaluate stage's ``psnr_y.<suite>``
    (:class:`~girml.evaluation.bench.Bench`, :func:`~girml.evaluation.restorers.model_restorer`,
    ``clipped_psnr``; the undegraded ``clean`` family left out), without its SSIM and NIQE: only
    PSNR-Y decides fp16 storage, and skipping the rest halves the time.

    Returns:
        ``{suite: dB}`` for every suite of the bench, in bench order.
    """
    from girml.evaluation.restorers import model_restorer
    from girml.evaluation.scores import clipped_psnr

    restore = model_restorer(model.eval(), tile)
    groups: dict[tuple[str, str], list[float]] = {}
    with torch.inference_mode():
        for item in (i for i in bench.items if i.family != CLEAN_FAMILY):
            lq, gt = bench.load(item)
            score = clipped_psnr(restore(lq), gt, crop_border, test_y=True)
            groups.setdefault((item.suite, item.family), []).append(score)
    suites: dict[str, list[float]] = {}
    for (suite, _), scores in groups.items():
        suites.setdefault(suite, []).append(sum(scores) / len(scores))
    return {suite: sum(means) / len(means) for suite, means in suites.items()}


def measure_fp16(
    model: nn.Module,
    model_cfg: ModelConfig,
    bench_dir: Path,
    crop_border: int = 0,
    tile: int | None = None,
    tolerance_db: float = FP16_TOLERANCE_DB,
) -> Fp16Check:
    """Score ``model`` and its fp16-stored copy on the benchmark suites (:func:`suite_psnr_y`).

    The copy is what :func:`girml.artifacts.release.load_release` makes of fp16 weights: the
    network rebuilt from ``model_cfg`` with every floating tensor rounded to float16 and cast
    back to float32.

    Raises:
        FileNotFoundError: no benchmark at ``bench_dir`` (the message says fp16 cannot be
            checked without it).
    """
    from girml.evaluation.bench import Bench

    if not Path(bench_dir).is_dir():
        raise FileNotFoundError(
            f"fp16 storage must be checked on the benchmark, but {bench_dir} does not exist: "
            "run `dvc pull` or `dvc repro synthesize`, or release in float32"
        )
    fp32_model = copy.deepcopy(model).to("cpu").eval()
    fp16_model = build_model(model_cfg)
    reference = fp16_model.state_dict()
    fp16_model.load_state_dict(
        {
            k: v.to(torch.float16).to(reference[k].dtype) if v.is_floating_point() else v
            for k, v in fp32_model.state_dict().items()
        },
        strict=True,
    )
    bench = Bench(bench_dir)
    return Fp16Check(
        suite_psnr_y(fp32_model, bench, crop_border, tile),
        suite_psnr_y(fp16_model.eval(), bench, crop_border, tile),
        tolerance_db,
    )
