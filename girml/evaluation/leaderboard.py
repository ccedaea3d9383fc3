"""The study's leaderboard: every evaluated method's gain per suite, with 95% bootstrap intervals
and paired differences against a reference method (DESIGN.md, "Metric names": the study).

Input: per-image rows (columns :data:`girml.evaluation.report.ROW_COLUMNS`) of several methods
scored on the same benchmark images (:func:`girml.evaluation.study.read_per_image`).

Definitions (gains in dB for PSNR-Y, in SSIM units for SSIM-Y):

- An image's gain is its output score minus its degraded input's (``psnr_y - psnr_y_input``,
  ``ssim_y - ssim_y_input``). Images without ground truth (NaN scores, the ``real`` suite) and
  the ``clean`` family (judged by the harm numbers instead) are left out of every gain.
- A suite's gain is the mean over its degraded families of each family's mean gain (families
  weigh the same: ``psnr_gain.<suite>`` of ``eval.json``, which subtracts the family means
  instead, up to float rounding). Its interval is the stratified percentile bootstrap of
  :func:`girml.evaluation.uncertainty.suite_gain_interval` with ``n_boot`` resamples and seed
  ``seed + i``, ``i`` the suite's index among the method's suites sorted by name: at
  ``seed=0`` and 2000 resamples the model's PSNR interval is the one in ``eval.json``
  (``psnr_gain_ci95_low.<suite>``).
- The paired difference against the reference takes the images both methods scored (same
  suite, family and id), the per-image PSNR gain difference (method minus reference), its
  family-weighted mean and the same stratified bootstrap of that mean (seed ``seed + i``).
- ``gir_score`` and ``generalization_gap`` are :func:`girml.evaluation.report.headline`'s (the
  values ``eval.json`` holds for the model); the ``gir_score`` interval and paired difference
  bootstrap the same mean, stratified by its (suite, family) groups, with seed ``seed + k``,
  ``k`` the number of the method's suites. Methods are ranked by ``gir_score``, highest first;
  methods without one (no ground truth in the GIR suites) come last, in row order.
- Harm numbers are :func:`girml.evaluation.report.harm_metrics`' (``harm_rate`` per suite,
  ``clean_psnr_y`` per suite with a ``clean`` family, ``worst_family_gain``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from girml.config import CLEAN_FAMILY
from girml.data.synthesize import SUITES
from girml.evaluation.bench import GIR_SUITES
from girml.evaluation.harness import MODEL_METHOD
from girml.evaluation.report import harm_metrics, headline, summarize
from girml.evaluation.uncertainty import BOOTSTRAP_SAMPLES, LEVEL, suite_gain_interval

# method -> suite -> family -> image id -> gain, in row order (the bootstrap's draw order)
_Gains = dict[str, dict[str, dict[str, dict[str, float]]]]


@dataclass(frozen=True)
class Estimate:
    """A mean and its bootstrap interval (same unit as the mean)."""

    value: float
    low: float
    high: float

    def excludes_zero(self) -> bool:
        """Whether the interval lies entirely above or below zero."""
        return self.low > 0.0 or self.high < 0.0


@dataclass(frozen=True)
class Cost:
    """What running a method costs, where known (None: unknown).

    Attributes:
        seconds_per_megapixel: restoration time per megapixel of input, >= 0.
        params: parameter count, >= 0.

    Raises:
        ValueError: a negative or non-finite value (the message names the field).
    """

    seconds_per_megapixel: float | None = None
    params: int | None = None

    def __post_init__(self) -> None:
        for name in ("seconds_per_megapixel", "params"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")


@dataclass(frozen=True)
class SuiteResult:
    """One method on one suite.

    Attributes:
        n: degraded images with ground truth.
        psnr_gain: mean PSNR-Y gain (dB), families weighted equally.
        ssim_gain: mean SSIM-Y gain, families weighted equally; None without SSIM scores.
        diff: paired ``psnr_gain`` difference, method minus reference (dB); None when the two
            share no image in this suite.
        harm_rate: fraction of the degraded images made worse (see
            :func:`girml.evaluation.report.harm_rate`); None when undefined.
    """

    n: int
    psnr_gain: Estimate
    ssim_gain: Estimate | None
    diff: Estimate | None
    harm_rate: float | None


@dataclass(frozen=True)
class MethodResult:
    """One method's row of the leaderboard.

    Attributes:
        method: the ``method`` column of the rows.
        rank: 1 for the best ``gir_score``.
        gir_score: :func:`girml.evaluation.report.gir_score` with its interval; None without
            ground truth in the GIR suites.
        gir_score_diff: paired ``gir_score`` difference against the reference (dB).
        generalization_gap: as in ``eval.json`` (dB); None when undefined.
        worst_family_gain: lowest per-family ``psnr_gain`` on ``single-id`` (dB).
        suites: suite -> result, in :data:`~girml.data.synthesize.SUITES` order.
        clean_psnr_y: suite -> mean output PSNR-Y of its ``clean`` family (dB).
        cost: what running the method costs, where known.
    """

    method: str
    rank: int
    gir_score: Estimate | None
    gir_score_diff: Estimate | None
    generalization_gap: float | None
    worst_family_gain: float | None
    suites: dict[str, SuiteResult] = field(default_factory=dict)
    clean_psnr_y: dict[str, float] = field(default_factory=dict)
    cost: Cost = field(default_factory=Cost)


@dataclass(frozen=True)
class Leaderboard:
    """Every method's results, best ``gir_score`` first (see the module docstring).

    Attributes:
        reference: the method paired differences are taken against.
        seed: the bootstrap's base seed.
        n_boot: bootstrap resamples per interval.
        methods: one result per method, in rank order.
    """

    reference: str
    seed: int
    n_boot: int
    methods: tuple[MethodResult, ...]

    def method(self, name: str) -> MethodResult:
        """The result of method ``name``.

        Raises:
            KeyError: no such method (the message lists those there are).
        """
        for result in self.methods:
            if result.method == name:
                return result
        raise KeyError(f"no method {name!r} in the leaderboard; methods: {self.names()}")

    def names(self) -> list[str]:
        """Method names in rank order."""
        return [result.method for result in self.methods]

    def suites(self) -> list[str]:
        """Every suite some method has a result on, in :func:`_suite_order`."""
        found = {suite for result in self.methods for suite in result.suites}
        return sorted(found, key=_suite_order)

    def clean_suites(self) -> list[str]:
        """Every suite with a ``clean`` family result, in :func:`_suite_order`."""
        found = {suite for result in self.methods for suite in result.clean_psnr_y}
        return sorted(found, key=_suite_order)


def _suite_order(suite: str) -> tuple[int, str]:
    return (SUITES.index(suite) if suite in SUITES else len(SUITES), suite)


# --------------------------------------------------------------------------- statistics


def _gains(rows: Sequence[Mapping[str, Any]], score: str) -> _Gains:
    """Per-image ``<score> - <score>_input`` of the degraded images with ground truth.

    Raises:
        ValueError: an image appears twice for one method.
    """
    out: _Gains = {}
    for row in rows:
        gain = float(row[score]) - float(row[f"{score}_input"])
        if row["family"] == CLEAN_FAMILY or not math.isfinite(gain):
            continue
        images = (
            out.setdefault(row["method"], {})
            .setdefault(row["suite"], {})
            .setdefault(row["family"], {})
        )
        if row["id"] in images:
            where = f"{row['suite']}/{row['family']}/{row['id']}"
            raise ValueError(f"method {row['method']!r} has image {where} twice")
        images[row["id"]] = gain
    return out


def _estimate(by_family: Mapping[str, Mapping[str, float]], n_boot: int, seed: int) -> Estimate:
    """Family-weighted mean of per-image values and its stratified bootstrap interval."""
    arrays = {
        family: np.fromiter(images.values(), dtype=np.float64)
        for family, images in by_family.items()
    }
    value = float(np.mean([values.mean() for values in arrays.values()]))
    low, high = suite_gain_interval(arrays, samples=n_boot, level=LEVEL, seed=seed)
    return Estimate(value, low, high)


def _paired(
    mine: Mapping[str, Mapping[str, float]], ref: Mapping[str, Mapping[str, float]]
) -> dict[str, dict[str, float]]:
    """Per family, per image both have: my value minus the reference's (families without a
    shared image are left out)."""
    out = {}
    for family, images in mine.items():
        theirs = ref.get(family, {})
        diffs = {key: value - theirs[key] for key, value in images.items() if key in theirs}
        if diffs:
            out[family] = diffs
    return out


def _gir_groups(suites: Mapping[str, Mapping[str, Mapping[str, float]]]) -> dict[str, Any]:
    """The (suite, family) groups :func:`~girml.evaluation.report.gir_score` averages over."""
    return {
        f"{suite}/{family}": images
        for suite, families in suites.items()
        if suite in GIR_SUITES
        for family, images in families.items()
    }


def leaderboard(
    rows: Sequence[Mapping[str, Any]],
    reference: str = MODEL_METHOD,
    seed: int = 0,
    n_boot: int = BOOTSTRAP_SAMPLES,
    costs: Mapping[str, Cost] | None = None,
) -> Leaderboard:
    """Rank every method of the per-image rows, with intervals (see the module docstring).

    Deterministic: the same rows, in the same order, and the same ``seed`` give the same
    numbers.

    Args:
        rows: per-image rows (:func:`girml.evaluation.study.read_per_image`), several methods.
        reference: the method paired differences are taken against.
        seed: the bootstrap's base seed.
        n_boot: bootstrap resamples per interval, >= 1.
        costs: method -> its :class:`Cost`, where known; other methods get an unknown cost.

    Returns:
        The leaderboard, best ``gir_score`` first.

    Raises:
        ValueError: ``reference`` is not a method of the rows (the message lists those there
            are), ``n_boot`` < 1, ``costs`` names an unknown method, or an image appears twice
            for one method.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    methods = list(dict.fromkeys(row["method"] for row in rows))
    if reference not in methods:
        raise ValueError(f"reference method {reference!r} is not in the rows; methods: {methods}")
    costs = dict(costs or {})
    unknown = [method for method in costs if method not in methods]
    if unknown:
        raise ValueError(f"costs name unknown method(s) {unknown}; methods: {methods}")
    psnr, ssim = _gains(rows, "psnr_y"), _gains(rows, "ssim_y")
    per_family = summarize(rows)
    results = [
        replace(
            _method_result(method, psnr, ssim, per_family, reference, seed, n_boot),
            cost=costs.get(method, Cost()),
        )
        for method in methods
    ]
    ranked = sorted(results, key=_rank_key)  # stable: ties and unscored methods in row order
    return Leaderboard(
        reference=reference,
        seed=seed,
        n_boot=n_boot,
        methods=tuple(replace(result, rank=rank) for rank, result in enumerate(ranked, start=1)),
    )


def _rank_key(result: MethodResult) -> tuple[bool, float]:
    """Scored methods first, highest ``gir_score`` first."""
    score = result.gir_score
    return (score is None, -score.value if score is not None else 0.0)


def _method_result(
    method: str,
    psnr: _Gains,
    ssim: _Gains,
    per_family: Sequence[Mapping[str, Any]],
    reference: str,
    seed: int,
    n_boot: int,
) -> MethodResult:
    """One method's numbers, unranked (rank 0)."""
    mine, ref, mine_ssim = psnr.get(method, {}), psnr.get(reference, {}), ssim.get(method, {})
    suites = {}
    harm = harm_metrics(per_family, method)
    for index, suite in enumerate(sorted(mine)):
        diffs = _paired(mine[suite], ref.get(suite, {}))
        suites[suite] = SuiteResult(
            n=sum(len(images) for images in mine[suite].values()),
            psnr_gain=_estimate(mine[suite], n_boot, seed + index),
            ssim_gain=_estimate(mine_ssim[suite], n_boot, seed + index)
            if suite in mine_ssim
            else None,
            diff=_estimate(diffs, n_boot, seed + index) if diffs else None,
            harm_rate=harm.get(f"harm_rate.{suite}"),
        )
    groups = _gir_groups(mine)
    gir_score = gir_diff = gap = None
    if groups:
        top = headline(per_family, method)
        interval = _estimate(groups, n_boot, seed + len(mine))
        gir_score = Estimate(top["gir_score"], interval.low, interval.high)
        gap = top.get("generalization_gap")
        diffs = _paired(groups, _gir_groups(ref))
        gir_diff = _estimate(diffs, n_boot, seed + len(mine)) if diffs else None
    clean_key = "harm.clean_psnr_y."
    return MethodResult(
        method=method,
        rank=0,
        gir_score=gir_score,
        gir_score_diff=gir_diff,
        generalization_gap=gap,
        worst_family_gain=harm.get("harm.worst_family_gain"),
        suites={suite: suites[suite] for suite in sorted(suites, key=_suite_order)},
        clean_psnr_y={
            key.removeprefix(clean_key): value
            for key, value in harm.items()
            if key.startswith(clean_key)
        },
    )
