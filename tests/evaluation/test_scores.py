"""The score columns of one output (girml.evaluation.scores): the PSNR cap, the border crop,
undefined metrics as NaN, real photos, and the NIQE reference fitted outside the test split."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest

from girml.evaluation.bench import Bench
from girml.evaluation.harness import evaluate_method
from girml.evaluation.report import headline, summarize
from girml.evaluation.scores import (
    GT_COLUMNS,
    MAX_PSNR,
    clipped_psnr,
    fit_pristine_niqe,
    gt_scores,
    real_scores,
)
from girml.metrics import NiqeModel, psnr
from tests.evaluation.common import CFG
from tests.factories import textured_image

INPUTS = {"psnr_y_input": 20.0, "ssim_y_input": 0.5}


def test_identical_images_score_the_cap_and_others_their_psnr() -> None:
    a = textured_image(0, 32, 32)
    b = np.clip(a.astype(np.int16) + 3, 0, 255).astype(np.uint8)
    assert clipped_psnr(a, a, 0, test_y=True) == MAX_PSNR
    assert clipped_psnr(a, b, 0, test_y=False) == psnr(a, b, 0) < MAX_PSNR


def test_perfect_restorer_scores_clipped_psnr(bench: Bench, pristine: NiqeModel) -> None:
    truth = {}
    for item in bench.items:
        lq, gt = bench.load(item)
        truth[lq.tobytes()] = gt

    def oracle(lq: np.ndarray) -> np.ndarray:
        return truth[lq.tobytes()]

    rows = evaluate_method(oracle, bench, CFG, pristine, None, method="oracle")
    assert all(r["psnr"] == r["psnr_y"] == MAX_PSNR for r in rows)
    assert all(r["ssim"] == pytest.approx(1.0) for r in rows)
    head = headline(summarize(rows), "oracle")
    assert head["psnr_y.single-id"] == MAX_PSNR
    assert 0 < head["gir_score"] < MAX_PSNR
    json.dumps(head, allow_nan=False)  # finite, so valid JSON


def test_crop_border_is_applied(bench: Bench, pristine: NiqeModel) -> None:
    def dark_border(lq: np.ndarray) -> np.ndarray:
        out = lq.copy()
        out[:4], out[-4:], out[:, :4], out[:, -4:] = 0, 0, 0, 0
        return out

    plain = evaluate_method(dark_border, bench, CFG, pristine, None, method="m")
    cropped_cfg = CFG.model_copy(update={"crop_border": 4})
    cropped = evaluate_method(dark_border, bench, cropped_cfg, pristine, None, method="m")
    assert all(c["psnr_y"] == c["psnr_y_input"] for c in cropped)  # border ignored
    assert all(p["psnr_y"] < p["psnr_y_input"] for p in plain)


def test_gt_columns_in_order_with_the_inputs_and_the_patch_metric(pristine: NiqeModel) -> None:
    gt = textured_image(1, 32, 32)
    row = gt_scores(gt, gt, INPUTS, 0, pristine, None, "m on x.png")
    assert list(row) == ["psnr", "ssim", "psnr_y", "ssim_y", *INPUTS, "niqe"]
    assert row["psnr"] == row["psnr_y"] == MAX_PSNR and row["psnr_y_input"] == 20.0
    whole = gt_scores(gt, gt, INPUTS, 0, pristine, None, "m on x.png", patches=True)
    assert list(whole)[-1] == "block_shift" and whole["block_shift"] == 0


def test_undefined_niqe_is_nan_with_a_warning(
    bench: Bench, pristine: NiqeModel, caplog: pytest.LogCaptureFixture
) -> None:
    def flat(lq: np.ndarray) -> np.ndarray:
        return np.full_like(lq, 128)

    with caplog.at_level(logging.WARNING, logger="girml.evaluation.scores"):
        rows = evaluate_method(flat, bench, CFG, pristine, None, method="flat")
    assert all(math.isnan(r["niqe"]) for r in rows)
    assert "NIQE undefined for flat on" in caplog.text
    assert "niqe.single-id" not in headline(summarize(rows), "flat")


def test_a_real_photo_has_niqe_only(pristine: NiqeModel) -> None:
    row = real_scores(textured_image(2, 40, 48), pristine, None, "m on real.png")
    assert all(math.isnan(row[column]) for column in GT_COLUMNS)
    assert math.isfinite(row["niqe"]) and "lpips" not in row


def test_niqe_is_fitted_on_the_train_and_val_photos(data: Path, tmp_path: Path) -> None:
    model = fit_pristine_niqe(data / "clean", patch_size=16)
    assert isinstance(model, NiqeModel)
    with pytest.raises(FileNotFoundError, match="girml collect"):
        fit_pristine_niqe(tmp_path, patch_size=16)
    with pytest.raises(ValueError, match="no train/val photo of at least 100000 px"):
        fit_pristine_niqe(data / "clean", patch_size=100000)
