"""How sure a suite's mean gain is: stratified bootstrap intervals over the benchmark images.

A suite's ``psnr_gain`` is the mean over its degraded families of each family's mean PSNR-Y
gain (families weighted equally, ``clean`` left out; :func:`girml.evaluation.report.headline`).
Its interval resamples the images of each family with replacement (a stratified bootstrap, so
every family keeps its weight) and takes percentiles of the recomputed suite means. The
generator is seeded: the same rows give the same interval, so ``metrics/eval.json`` stays
reproducible. BENCHMARKS.md found single-run differences under about 0.3 dB to be noise; these
intervals say so per suite.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from girml.config import CLEAN_FAMILY

BOOTSTRAP_SAMPLES = 2000
LEVEL = 0.95


def suite_gain_interval(
    gains_by_family: Mapping[str, np.ndarray],
    samples: int = BOOTSTRAP_SAMPLES,
    level: float = LEVEL,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile interval of the family-weighted mean gain, resampling within each family.

    Args:
        gains_by_family: family -> per-image gains (dB), each non-empty.
        samples: bootstrap resamples.
        level: coverage, e.g. 0.95.
        seed: the generator's seed.

    Returns:
        ``(low, high)`` in dB.
    """
    if not gains_by_family or any(len(g) == 0 for g in gains_by_family.values()):
        raise ValueError("every family needs at least one image")
    rng = np.random.default_rng(seed)
    family_means = np.empty((samples, len(gains_by_family)))
    for column, gains in enumerate(gains_by_family.values()):
        values = np.asarray(gains, dtype=np.float64)
        picks = rng.integers(0, len(values), size=(samples, len(values)))
        family_means[:, column] = values[picks].mean(axis=1)
    means = family_means.mean(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


def gain_intervals(rows: Iterable[Mapping[str, Any]], method: str) -> dict[str, float]:
    """``psnr_gain_ci95_low.<suite>`` and ``psnr_gain_ci95_high.<suite>`` of one method.

    Args:
        rows: per-image rows of :func:`girml.evaluation.harness.evaluate_method` (any
            methods); images without ground truth and the ``clean`` family are left out.
        method: whose rows to use.

    Returns:
        Flat keys for every suite with ground truth; the suite seeds differ, so suites do not
        share resamples.
    """
    by_suite: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row["method"] != method or row["family"] == CLEAN_FAMILY:
            continue
        gain = float(row["psnr_y"]) - float(row["psnr_y_input"])
        if math.isfinite(gain):
            by_suite[row["suite"]][row["family"]].append(gain)
    out: dict[str, float] = {}
    for index, (suite, families) in enumerate(sorted(by_suite.items())):
        gains = {family: np.asarray(values) for family, values in families.items()}
        low, high = suite_gain_interval(gains, seed=index)
        out[f"psnr_gain_ci95_low.{suite}"] = low
        out[f"psnr_gain_ci95_high.{suite}"] = high
    return out
