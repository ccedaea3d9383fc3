"""The whole-photo suite (girml.evaluation.whole): photos restored as ``girml restore`` restores
them, scored with the patch metric, on the tiny synthesized bench."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from girml.config import RESTORE_TILE
from girml.evaluation.bench import Bench
from girml.evaluation.costs import RestoreCost
from girml.evaluation.restorers import model_restorer
from girml.evaluation.whole import evaluate_whole, has_whole_suite, restore_restorer
from girml.metrics import NiqeModel
from tests.evaluation.common import CFG, ROW_KEYS, tiny_model
from tests.factories import textured_image


class Invert(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 1 - x


def test_the_suite_is_found_by_its_folder(data: Path, tmp_path: Path) -> None:
    assert has_whole_suite(data / "bench")
    assert not has_whole_suite(tmp_path)


def test_restore_restorer_runs_as_girml_restore_does() -> None:
    photo = textured_image(0, RESTORE_TILE + 40, RESTORE_TILE // 2)
    assert (restore_restorer(Invert())(photo) == 255 - photo).all()  # tiled, seamless
    model = tiny_model(0, 0.05)
    whole = model_restorer(model, None)(photo)
    assert restore_restorer(model)(photo).shape == whole.shape == photo.shape


def test_each_network_scores_every_whole_photo_with_the_patch_metric(
    data: Path, pristine: NiqeModel, tmp_path: Path
) -> None:
    bench = Bench(data / "bench", whole=True)
    cfg = CFG.model_copy(update={"real_dir": str(tmp_path)})  # real photos: not scored again
    timed = {"model": RestoreCost()}  # the champion is not timed
    rows = evaluate_whole({"model": torch.nn.Identity(), "champion": Invert()}, bench, cfg,
                          pristine, None, timed)  # fmt: skip
    assert timed["model"].images == len(bench) and timed["model"].seconds > 0
    assert timed["model"].pixels == sum(bench.load(i)[0][..., 0].size for i in bench.items)
    assert [r["method"] for r in rows] == ["model"] * len(bench) + ["champion"] * len(bench)
    assert all(list(r) == [*ROW_KEYS, "block_shift"] for r in rows)
    assert {r["suite"] for r in rows} == {"whole"}
    model = [r for r in rows if r["method"] == "model"]
    # identity through tiles: the input's scores, up to the rounding of the blended seams
    assert all(r["psnr_y"] == pytest.approx(r["psnr_y_input"], abs=0.05) for r in model)
    champion = [r for r in rows if r["method"] == "champion"]
    assert all(r["psnr_y"] < r["psnr_y_input"] for r in champion)
    assert all(math.isfinite(r["block_shift"]) and r["block_shift"] >= 0 for r in rows)
