"""Bootstrap intervals of a suite's mean gain (girml.evaluation.uncertainty)."""

from __future__ import annotations

import numpy as np
import pytest

from girml.evaluation.uncertainty import gain_intervals, suite_gain_interval


def test_interval_brackets_the_family_weighted_mean_and_narrows_with_more_images() -> None:
    rng = np.random.default_rng(1)
    few = {"blur": rng.normal(1.0, 1.0, 8), "noise": rng.normal(4.0, 1.0, 8)}
    many = {"blur": rng.normal(1.0, 1.0, 400), "noise": rng.normal(4.0, 1.0, 400)}
    for gains in (few, many):
        low, high = suite_gain_interval(gains)
        mean = np.mean([g.mean() for g in gains.values()])  # families weighted equally
        assert low < mean < high
    width_few = np.subtract(*suite_gain_interval(few)[::-1])
    width_many = np.subtract(*suite_gain_interval(many)[::-1])
    assert width_many < width_few / 4  # ~ 1/sqrt(n): 50x the images, about 1/7 the width
    # a family with one image weighs as much as one with a hundred
    lopsided = {"a": np.full(100, 0.0), "b": np.array([2.0])}
    assert suite_gain_interval(lopsided) == pytest.approx((1.0, 1.0))


def test_interval_is_reproducible_and_needs_images() -> None:
    gains = {"jpeg": np.array([0.1, -0.3, 0.5, 0.2])}
    assert suite_gain_interval(gains) == suite_gain_interval(gains)
    assert suite_gain_interval(gains, seed=1) != suite_gain_interval(gains, seed=2)
    with pytest.raises(ValueError, match="at least one image"):
        suite_gain_interval({"jpeg": np.array([])})


def test_gain_intervals_per_suite_leave_out_clean_other_methods_and_photos_without_gt() -> None:
    def row(method: str, suite: str, family: str, out: float, inp: float) -> dict:
        return {"method": method, "suite": suite, "family": family, "psnr_y": out,
                "psnr_y_input": inp}  # fmt: skip

    rows = [
        row("model", "single-id", "blur", 31.0, 30.0),
        row("model", "single-id", "blur", 33.0, 30.0),
        row("model", "single-id", "clean", 40.0, 100.0),  # harm is measured elsewhere
        row("nlm", "single-id", "blur", 10.0, 30.0),
        row("model", "unseen", "rain", 22.0, 20.0),
        row("model", "real", "real", float("nan"), float("nan")),
    ]
    keys = gain_intervals(rows, "model")
    assert set(keys) == {
        "psnr_gain_ci95_low.single-id",
        "psnr_gain_ci95_high.single-id",
        "psnr_gain_ci95_low.unseen",
        "psnr_gain_ci95_high.unseen",
    }
    assert (
        1.0
        <= keys["psnr_gain_ci95_low.single-id"]
        <= 2.0
        <= keys["psnr_gain_ci95_high.single-id"]
        <= 3.0
    )
    assert keys["psnr_gain_ci95_low.unseen"] == keys["psnr_gain_ci95_high.unseen"] == 2.0
