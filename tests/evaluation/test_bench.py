"""The benchmark on disk (girml.evaluation.bench): scanning suites and real photos, loading pairs,
and scoring each degraded input once."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from girml.core.imageio import ImageReadError, write_png
from girml.evaluation import scores
from girml.evaluation.bench import GIR_SUITES, REAL_SUITE, Bench, scan_bench, scan_real
from girml.evaluation.harness import evaluate_method
from girml.evaluation.scores import MAX_PSNR, fit_pristine_niqe
from girml.metrics import NiqeModel
from tests.evaluation.common import CFG, TINY_GROUPS, identity
from tests.factories import textured_image


def test_scan_orders_suites_as_the_design_then_families_by_name(data: Path) -> None:
    items = scan_bench(data / "bench")
    suites = list(dict.fromkeys(item.suite for item in items))
    assert suites[: len(TINY_GROUPS)] == list(TINY_GROUPS)
    assert suites[-1] == "whole"  # not a design suite: after them
    for suite in TINY_GROUPS:
        families = [item.family for item in items if item.suite == suite]
        assert families == sorted(families)
    assert all(item.lq.is_file() and item.gt is not None and item.gt.is_file() for item in items)
    assert set(GIR_SUITES) <= set(suites)


def test_a_bench_holds_the_crop_suites_or_the_whole_photos(data: Path) -> None:
    crops, whole = Bench(data / "bench"), Bench(data / "bench", whole=True)
    assert {item.suite for item in whole.items} == {"whole"}
    assert "whole" not in {item.suite for item in crops.items}
    assert len(crops) + len(whole) == len(scan_bench(data / "bench"))
    lq, gt = crops.load(crops.items[0])
    assert lq.shape == gt.shape and lq.dtype == gt.dtype == np.uint8


def test_input_scores_are_computed_once_per_image(
    data: Path, pristine: NiqeModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"y": 0}
    real_psnr = scores.psnr

    def counting(a, b, crop_border=0, test_y=False):
        calls["y"] += test_y
        return real_psnr(a, b, crop_border, test_y)

    monkeypatch.setattr(scores, "psnr", counting)
    fresh = Bench(data / "bench")
    evaluate_method(identity, fresh, CFG, pristine, None, method="a")
    evaluate_method(identity, fresh, CFG, pristine, None, method="b")
    assert calls["y"] == 3 * len(fresh)  # output of a, output of b, the input once
    item = fresh.items[0]
    lq, gt = fresh.load(item)
    assert fresh.input_scores(item, lq, gt, 0) is fresh.input_scores(item, lq, gt, 0)
    assert fresh.input_scores(item, lq, gt, 4) is not fresh.input_scores(item, lq, gt, 0)


def test_broken_bench_image_fails_naming_the_file(data: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(data / "bench", tmp_path / "bench")
    broken = copy / "single-id" / "noise" / "lq" / "0001.png"
    broken.write_bytes(b"not a png")
    pristine = fit_pristine_niqe(data / "clean", patch_size=16)
    with pytest.raises(ImageReadError, match=str(broken)):
        evaluate_method(identity, copy, CFG, pristine, None)
    (copy / "mixed" / "blur+noise" / "recipes.jsonl").write_text('{"id": "0000"}\n')
    with pytest.raises(ValueError, match=r"recipes.jsonl:1: record lacks key"):
        Bench(copy)
    with pytest.raises(FileNotFoundError, match="girml synthesize"):
        Bench(tmp_path / "nowhere")


def test_a_family_folder_without_records_and_an_empty_bench_are_errors(tmp_path: Path) -> None:
    (tmp_path / "single-id" / "noise").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"without recipes\.jsonl"):
        scan_bench(tmp_path)
    (tmp_path / "single-id" / "noise" / "recipes.jsonl").write_text("")
    with pytest.raises(ValueError, match="no benchmark records"):
        scan_bench(tmp_path)
    with pytest.raises(FileNotFoundError, match="holds no"):
        scan_bench(tmp_path / "single-id" / "noise")


def test_real_photos_are_every_visible_image_without_ground_truth(tmp_path: Path) -> None:
    real = tmp_path / "real"
    write_png(real / "b.png", textured_image(1, 20, 24))
    write_png(real / "sub" / "a.png", textured_image(2, 20, 24))
    write_png(real / ".hidden" / "c.png", textured_image(3, 20, 24))
    (real / "notes.txt").write_text("not an image")
    items = scan_real(real)
    assert [item.id for item in items] == ["b.png", "sub/a.png"]
    assert all(item.suite == item.family == REAL_SUITE and item.gt is None for item in items)
    with pytest.raises(FileNotFoundError, match=r"evaluate\.real_dir"):
        scan_real(tmp_path / "missing")


def test_a_clean_input_scores_the_psnr_cap(bench: Bench) -> None:
    item = next(item for item in bench.items if item.family == "clean")
    lq, gt = bench.load(item)
    assert bench.input_scores(item, lq, gt, 0)["psnr_y_input"] == MAX_PSNR
    with pytest.raises(ValueError, match="no ground truth"):
        bench.load(scan_real(item.lq.parent)[0])
