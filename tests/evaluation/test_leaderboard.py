"""The study's leaderboard (girml.evaluation.leaderboard): intervals, paired differences, ranking
and the numbers eval.json holds, on hand-made per-image rows."""

from __future__ import annotations

import json

import numpy as np
import pytest

from girml.evaluation.leaderboard import Cost, Estimate, leaderboard
from girml.evaluation.report import harm_metrics, headline, summarize
from girml.evaluation.study_files import study_json
from girml.evaluation.uncertainty import gain_intervals
from tests.evaluation.common import FAMILIES, NAN, row, study_rows, width


def test_a_method_equal_to_the_reference_differs_by_zero() -> None:
    rows = study_rows("model") + study_rows("copy")
    board = leaderboard(rows)
    copy = board.method("copy")
    for stats in copy.suites.values():
        assert stats.diff is not None
        assert stats.diff.low <= stats.diff.value == 0.0 <= stats.diff.high
    assert copy.gir_score_diff is not None and copy.gir_score_diff.value == 0.0
    assert copy.gir_score == board.method("model").gir_score


def test_a_method_better_by_one_db_on_every_image_differs_by_one_with_zero_width() -> None:
    rows = study_rows("model") + study_rows("better", shift=1.0)
    board = leaderboard(rows)
    better, model = board.method("better"), board.method("model")
    assert board.names() == ["better", "model"]
    assert [better.rank, model.rank] == [1, 2]
    for suite, stats in better.suites.items():
        assert stats.diff == Estimate(1.0, 1.0, 1.0), suite
        assert stats.psnr_gain.value == pytest.approx(model.suites[suite].psnr_gain.value + 1)
        assert width(stats.psnr_gain) > 0  # the gains vary, their difference does not
    assert better.gir_score_diff == Estimate(1.0, 1.0, 1.0)
    # seen from the better method, the model is 1 dB worse
    assert leaderboard(rows, reference="better").method("model").suites["mixed"].diff == (
        Estimate(-1.0, -1.0, -1.0)
    )


def test_intervals_shrink_with_more_images() -> None:
    def noisy(method: str, n: int, seed: int) -> list[dict]:
        rng = np.random.default_rng(seed)
        return [
            row(method, "single-id", "noise", i, 30.0 + rng.normal(1.0, 1.0), 30.0)
            for i in range(n)
        ]

    few = leaderboard(noisy("model", 10, 0) + noisy("other", 10, 1)).method("other")
    many = leaderboard(noisy("model", 1000, 0) + noisy("other", 1000, 1)).method("other")
    for part in ("psnr_gain", "diff"):
        wide, narrow = (
            getattr(few.suites["single-id"], part),
            getattr(many.suites["single-id"], part),
        )
        assert width(narrow) < width(wide) / 4, part  # ~ 1/sqrt(n): 100x the images, 1/10
    assert many.suites["single-id"].diff.low < 0 < many.suites["single-id"].diff.high


def test_the_same_seed_gives_the_same_numbers() -> None:
    rows = study_rows("model") + study_rows("nlm", seed=3)
    assert leaderboard(rows, seed=7) == leaderboard(rows, seed=7)
    first, second = leaderboard(rows, seed=7).method("nlm"), leaderboard(rows, seed=8).method("nlm")
    assert first.suites["single-id"].psnr_gain.value == second.suites["single-id"].psnr_gain.value
    assert first.suites["single-id"].psnr_gain != second.suites["single-id"].psnr_gain
    assert leaderboard(rows, n_boot=50) != leaderboard(rows, n_boot=60)


def test_the_numbers_are_those_of_eval_json() -> None:
    """gir_score, generalization_gap and harm are report.py's; at seed 0 the model's PSNR
    intervals are uncertainty.gain_intervals' (the psnr_gain_ci95 keys of eval.json)."""
    rows = study_rows("model") + study_rows("nlm", seed=3)
    board = leaderboard(rows)
    per_family = summarize(rows)
    for method in ("model", "nlm"):
        result, top = board.method(method), headline(per_family, method)
        assert result.gir_score is not None and result.gir_score.value == top["gir_score"]
        assert result.generalization_gap == top["generalization_gap"]
        harm = harm_metrics(per_family, method)
        assert result.worst_family_gain == harm["harm.worst_family_gain"]
        assert result.clean_psnr_y == {
            "single-id": harm["harm.clean_psnr_y.single-id"],
            "unseen-content": harm["harm.clean_psnr_y.unseen-content"],
        }
        for suite, stats in result.suites.items():
            assert stats.harm_rate == harm[f"harm_rate.{suite}"]
            assert stats.psnr_gain.value == pytest.approx(top[f"psnr_gain.{suite}"], abs=1e-9)
            assert stats.ssim_gain is not None
            assert stats.ssim_gain.value == pytest.approx(0.1)
    intervals = gain_intervals(rows, "model")
    for suite, stats in board.method("model").suites.items():
        assert stats.psnr_gain.low == intervals[f"psnr_gain_ci95_low.{suite}"]
        assert stats.psnr_gain.high == intervals[f"psnr_gain_ci95_high.{suite}"]
    assert list(board.method("model").suites) == list(FAMILIES)  # DESIGN.md's suite order


def test_a_missing_reference_is_an_error_that_names_it() -> None:
    with pytest.raises(ValueError, match=r"reference method 'champion'.*\['model', 'nlm'\]"):
        leaderboard(study_rows("model") + study_rows("nlm"), reference="champion")
    with pytest.raises(ValueError, match="reference method 'model'"):
        leaderboard([])


def test_bad_arguments_are_errors_that_name_the_value() -> None:
    rows = study_rows("model")
    with pytest.raises(ValueError, match="n_boot must be >= 1, got 0"):
        leaderboard(rows, n_boot=0)
    with pytest.raises(ValueError, match=r"costs name unknown method\(s\) \['x'\]"):
        leaderboard(rows, costs={"x": Cost(1.0)})
    with pytest.raises(ValueError, match="params must be a finite number >= 0, got -1"):
        Cost(params=-1)
    with pytest.raises(ValueError, match=r"seconds_per_megapixel must be .* got nan"):
        Cost(seconds_per_megapixel=NAN)
    with pytest.raises(ValueError, match="'model' has image single-id/rain/0000 twice"):
        leaderboard([*rows, *[row("model", "single-id", "rain", 0, 1.0, 2.0)] * 2])


def test_empty_suites_and_methods_without_ground_truth_are_left_out_not_errors() -> None:
    rows = [
        *study_rows("model"),
        # only the clean family, and only photos without GT: no gain anywhere
        row("clean-only", "single-id", "clean", 0, 50.0, 100.0),
        row("clean-only", "real", "real", 0, NAN, NAN),
        # one suite the reference does not have, one it does
        row("partial", "real", "real", 0, NAN, NAN),
        row("partial", "extra", "blur", 0, 31.0, 30.0),
        row("partial", "unseen", "rain", 0, 31.0, 30.0),
    ]
    board = leaderboard(rows, costs={"model": Cost(seconds_per_megapixel=0.5, params=1200)})
    clean_only, partial = board.method("clean-only"), board.method("partial")
    assert clean_only.suites == {} and clean_only.gir_score is None
    assert clean_only.clean_psnr_y == {"single-id": 50.0}
    assert list(partial.suites) == ["unseen", "extra"]  # DESIGN.md's suites first
    assert partial.suites["extra"].diff is None  # the reference has no image there
    assert partial.suites["unseen"].diff is not None
    assert partial.gir_score is not None and partial.generalization_gap is None
    assert board.names()[-1] == "clean-only"  # no gir_score: ranked last
    methods = study_json(board)["methods"]
    assert methods["clean-only"]["gir_score"] is None
    assert methods["clean-only"]["gir_score_diff_vs_model"] is None
    assert methods["partial"]["extra"]["diff_vs_model"] is None
    assert methods["partial"]["seconds_per_megapixel"] is None  # unknown -> null
    assert methods["model"]["seconds_per_megapixel"] == 0.5
    assert methods["model"]["params"] == 1200
    json.dumps(study_json(board), allow_nan=False)
