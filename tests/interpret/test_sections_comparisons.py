"""girml.interpret.sections_comparisons: section 4, the worst and best restorations."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from girml.interpret.sections_comparisons import COMPARISON_CROP, comparisons_section
from tests.interpret.common import CFG, make_sample


def test_worst_and_best_of_every_group_by_gain() -> None:
    gains = [0.5, -2.0, 3.0, 1.0, -0.5]
    samples = [make_sample("single-id", "noise", i, gain=g) for i, g in enumerate(gains)]
    samples.append(make_sample("unseen", "haze", 9, gain=0.25))
    sec = comparisons_section(samples, CFG.model_copy(update={"comparisons_per_family": 2}))
    assert sec.data["single-id/noise"] == [
        {"case": "worst", "id": "001", "gain": -2.0},
        {"case": "worst", "id": "004", "gain": -0.5},
        {"case": "best", "id": "002", "gain": 3.0},
        {"case": "best", "id": "003", "gain": 1.0},
    ]
    # a group smaller than 2 x comparisons_per_family shows each image once
    assert sec.data["unseen/haze"] == [{"case": "worst", "id": "009", "gain": 0.25}]
    assert set(sec.figures) == {"comparisons_single-id.png", "comparisons_unseen.png"}


def test_large_images_are_cropped() -> None:
    big = make_sample("single-id", "noise", 0, size=COMPARISON_CROP + 40)
    small = make_sample("single-id", "noise", 0, size=COMPARISON_CROP)
    sizes = []
    for sample in (big, small):
        png = comparisons_section([sample], CFG).figures["comparisons_single-id.png"]
        with Image.open(io.BytesIO(png)) as im:
            sizes.append(im.size)
    assert sizes[0] == sizes[1]  # the same crop, not the whole image


def test_comparisons_in_the_report(report: tuple[Path, dict]) -> None:
    _, result = report
    comparisons = result["comparisons"]
    assert [c["case"] for c in comparisons["single-id/noise"]] == ["worst", "best"]
    assert [c["case"] for c in comparisons["single-id/clean"]] == ["worst", "best"]
