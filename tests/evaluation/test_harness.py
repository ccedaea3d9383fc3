"""The benchmark harness (girml.evaluation.harness) on a tiny synthesized bench: every image
scored with the same columns, real photos, LPIPS, baselines, and batch restorers that fail per
image.

Real parts throughout: a bench written by the synthesize stage, the real baselines and NIQE.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from girml.core.imageio import write_png
from girml.evaluation.bench import Bench, BenchItem
from girml.evaluation.harness import evaluate_baselines, evaluate_batches, evaluate_method
from girml.evaluation.report import best_baselines, headline, summarize
from girml.evaluation.restorers import per_image
from girml.evaluation.scores import MAX_PSNR
from girml.metrics import LpipsMetric, NiqeModel, block_shift, load_lpips, psnr
from tests.evaluation.common import CFG, ROW_KEYS, TINY_GROUPS, identity
from tests.factories import textured_image


@pytest.fixture(scope="module")
def identity_rows(bench: Bench, pristine: NiqeModel) -> list[dict]:
    return evaluate_method(identity, bench, CFG, pristine, None, method="identity")


def test_rows_are_complete_and_identity_gains_nothing(
    bench: Bench, identity_rows: list[dict]
) -> None:
    assert len(identity_rows) == len(bench) == 4 * sum(len(f) for f in TINY_GROUPS.values())
    # the patch metric on every clean crop ("dim is not dark"), nowhere else in the crop suites
    assert all(
        list(row) == ([*ROW_KEYS, "block_shift"] if row["family"] == "clean" else ROW_KEYS)
        for row in identity_rows
    )
    groups = {}
    for row in identity_rows:
        groups.setdefault(row["suite"], set()).add(row["family"])
        assert row["psnr_y"] == row["psnr_y_input"] and row["ssim_y"] == row["ssim_y_input"]
        assert row["level"] == ("ood" if row["suite"] == "single-ood" else "id")
        assert math.isfinite(row["niqe"])
        assert row["ssim"] == 1 if row["family"] == "clean" else 0 < row["ssim"] < 1
    assert groups == TINY_GROUPS
    assert list(groups) == list(TINY_GROUPS)  # suites in the design's order
    per_family = summarize(identity_rows)
    assert len(per_family) == sum(len(f) for f in TINY_GROUPS.values())
    assert all(row["psnr_gain"] == 0 and row["n"] == 4 for row in per_family)
    head = headline(per_family, "identity")
    assert head["gir_score"] == 0 and head["generalization_gap"] == 0
    # identity does no harm: nothing made worse, clean images untouched (PSNR at the cap)
    assert {k: v for k, v in head.items() if k.startswith("harm")} == {
        **{f"harm_rate.{s}": 0.0 for s in TINY_GROUPS},
        "harm.clean_psnr_y.single-id": MAX_PSNR,
        "harm.clean_psnr_y.unseen-content": MAX_PSNR,
        "harm.block_shift.single-id": 0.0,
        "harm.block_shift.unseen-content": 0.0,
        "harm.worst_family_gain": 0.0,
    }
    clean = [r for r in identity_rows if r["family"] == "clean"]
    assert len(clean) == 8 and all(r["psnr_y_input"] == MAX_PSNR for r in clean)


def test_brightness_shift_harms_every_image(bench: Bench, pristine: NiqeModel) -> None:
    def brighter(lq: np.ndarray) -> np.ndarray:
        return np.clip(lq.astype(np.int16) + 40, 0, 255).astype(np.uint8)

    rows = evaluate_method(brighter, bench, CFG, pristine, None, method="bright")
    head = headline(summarize(rows), "bright")
    assert all(head[f"harm_rate.{s}"] == 1.0 for s in TINY_GROUPS)
    for suite in ("single-id", "unseen-content"):
        expected = np.mean(
            [
                psnr(brighter(gt), gt, test_y=True)
                for item in bench.items
                if (item.suite, item.family) == (suite, "clean")
                for _, gt in [bench.load(item)]
            ]
        )
        assert head[f"harm.clean_psnr_y.{suite}"] == pytest.approx(expected)
        assert 10 < expected < 30  # about 40 levels brighter, less where 255 clips
        # a clean crop brightened: its whole mean shift is the patch metric (one block)
        shifts = [
            block_shift(brighter(gt), gt)
            for item in bench.items
            if (item.suite, item.family) == (suite, "clean")
            for _, gt in [bench.load(item)]
        ]
        assert head[f"harm.block_shift.{suite}"] == pytest.approx(max(shifts))
        assert 30 < max(shifts) <= 40


def test_real_suite_scores_niqe_and_skips_broken_photos(
    bench: Bench, pristine: NiqeModel, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    real = tmp_path / "real"
    write_png(real / "a.png", textured_image(1, 40, 48))
    write_png(real / "sub" / "b.png", textured_image(2, 64, 40))
    (real / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    (real / "notes.txt").write_text("not an image")
    cfg = CFG.model_copy(update={"real_dir": str(real)})
    with caplog.at_level(logging.WARNING, logger="girml.evaluation.harness"):
        rows = evaluate_method(identity, bench, cfg, pristine, None)
    real_rows = [r for r in rows if r["suite"] == "real"]
    assert [r["id"] for r in real_rows] == ["a.png", "sub/b.png"]
    assert all(math.isfinite(r["niqe"]) and math.isnan(r["psnr_y"]) for r in real_rows)
    assert "broken.jpg" in caplog.text
    head = headline(summarize(rows), "model")
    assert "niqe.real" in head and "psnr_y.real" not in head


def test_bad_restorer_output_is_reported(bench: Bench, pristine: NiqeModel) -> None:
    with pytest.raises(ValueError, match=r"method 'half' returned \(16, 32, 3\) for .*0000.png"):
        evaluate_method(lambda lq: lq[::2], bench, CFG, pristine, None, method="half")
    with pytest.raises(RuntimeError, match="method 'boom' failed on"):
        evaluate_method(lambda lq: 1 / 0, bench, CFG, pristine, None, method="boom")


def test_lpips_column_only_when_configured(
    bench: Bench, pristine: NiqeModel, identity_rows: list[dict], tmp_path: Path
) -> None:
    torch.manual_seed(0)
    weights = tmp_path / "lpips.pt"
    torch.save(LpipsMetric().state_dict(), weights)
    rows = evaluate_method(identity, bench, CFG, pristine, load_lpips(weights))
    assert all(math.isfinite(r["lpips"]) for r in rows)
    assert "lpips" not in identity_rows[0]
    assert "lpips.single-id" in headline(summarize(rows), "model")


def test_baselines_run_through_the_harness(bench: Bench, pristine: NiqeModel) -> None:
    rows = evaluate_baselines(["identity", "deblock", "gamma"], bench, CFG, pristine, None)
    assert [r["method"] for r in rows[:: len(bench)]] == ["identity", "deblock", "gamma"]
    per_family = summarize(rows)
    best = best_baselines(per_family, ["identity", "deblock", "gamma"])
    assert set(best) == TINY_GROUPS["single-id"] - {"clean"}  # nothing to restore on clean
    for family, (name, value) in best.items():
        scores = {
            r["method"]: r["psnr_y"]
            for r in per_family
            if (r["suite"], r["family"]) == ("single-id", family)
        }
        assert name in ("deblock", "gamma")
        assert value == max(scores["deblock"], scores["gamma"])
    with pytest.raises(KeyError, match=r"unknown baseline 'nope'; available: .*identity"):
        evaluate_baselines(["identity", "nope"], bench, CFG, pristine, None)


# --------------------------------------------------------------------------- batches


def test_batches_score_as_evaluate_method_does(
    bench: Bench, pristine: NiqeModel, identity_rows: list[dict]
) -> None:
    calls: list[int] = []

    def counted(items, lqs):
        calls.append(len(items))
        return per_image(identity)(items, lqs)

    by_family = evaluate_batches(counted, bench, CFG, pristine, None, method="identity")
    assert by_family.rows == identity_rows and not by_family.failures
    assert len(calls) == sum(len(f) for f in TINY_GROUPS.values()) and set(calls) == {4}
    calls.clear()
    at_once = evaluate_batches(counted, bench, CFG, pristine, None, method="identity", batch="all")
    assert at_once.rows == identity_rows and calls == [len(bench)]


def test_a_batch_restorer_that_fails_on_some_images_loses_only_those(
    bench: Bench, pristine: NiqeModel, caplog: pytest.LogCaptureFixture
) -> None:
    def flaky(items: list[BenchItem], lqs: list[np.ndarray]) -> list:
        return [
            RuntimeError("boom") if item.family == "jpeg" else lq[::2] if item.id == "0000" else lq
            for item, lq in zip(items, lqs, strict=True)
        ]

    with caplog.at_level(logging.WARNING, logger="girml.evaluation.harness"):
        result = evaluate_batches(flaky, bench, CFG, pristine, None, method="flaky")
    jpeg = [i for i in bench.items if i.family == "jpeg"]
    first = [i for i in bench.items if i.id == "0000" and i.family != "jpeg"]
    assert len(result.failures) == len(jpeg) + len(first)
    assert len(result.rows) == len(bench) - len(result.failures)
    failure = next(f for f in result.failures if f.family == "jpeg")
    assert failure.message == "RuntimeError: boom"
    assert failure.describe() == f"{failure.suite}/jpeg/{failure.id}: RuntimeError: boom"
    assert "method 'flaky': no output for" in caplog.text
    with pytest.raises(ValueError, match=r"method 'short' gave 0 outputs for 4 images"):
        evaluate_batches(lambda items, lqs: [], bench, CFG, pristine, None, method="short")
