"""girml.interpret.sections_cases: section 6, the worst harms on clean and single-id crops, one
generated sentence each."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from girml.evaluation.bench import BenchItem
from girml.interpret.inputs import Sample
from girml.interpret.sections_cases import cases_section, harmed_cases, looks, what_changed
from tests.interpret.common import make_sample


def per_image_row(
    suite: str, family: str, image: str, out: float, inp: float, method: str = "model"
) -> dict:
    return {"method": method, "suite": suite, "family": family, "id": image, "level": "id",
            "psnr_y": out, "psnr_y_input": inp}  # fmt: skip


def dark_clean_sample(image: str = "007") -> Sample:
    """A dark clean crop (input = ground truth) that the model brightened."""
    rng = np.random.default_rng(0)
    gt = rng.integers(10, 40, size=(16, 16, 3)).astype(np.uint8)
    item = BenchItem("single-id", "clean", image, "src", "id", Path("lq.png"), None)
    return Sample(item, "cat0", gt.copy(), gt, gt + np.uint8(60), 100.0, 14.0)


ROWS = [
    per_image_row("single-id", "clean", "007", 14.0, 100.0),  # harmed clean crop
    per_image_row("single-id", "clean", "008", 100.0, 100.0),  # untouched: not a case
    per_image_row("unseen-content", "clean", "001", 43.0, 100.0),
    per_image_row("single-id", "noise", "003", 22.0, 25.0),  # 3 dB worse
    per_image_row("single-id", "blur", "004", 24.0, 25.0),
    per_image_row("single-id", "blur", "005", 27.0, 25.0),  # improved: not a case
    per_image_row("unseen", "rain", "009", 10.0, 25.0),  # not a mild input
    per_image_row("single-id", "clean", "002", 5.0, 100.0, method="nlm"),  # another method
]


def test_worst_clean_and_mild_harms_from_the_per_image_rows() -> None:
    cases = harmed_cases(ROWS, [], k=4)
    assert [(c.kind, c.suite, c.family, c.id) for c in cases] == [
        ("clean", "single-id", "clean", "007"),
        ("clean", "unseen-content", "clean", "001"),
        ("mild", "single-id", "noise", "003"),
        ("mild", "single-id", "blur", "004"),
    ]
    assert [c.kind for c in harmed_cases(ROWS, [], k=1)] == ["clean", "mild"]
    with pytest.raises(ValueError, match="k must be >= 1, got 0"):
        harmed_cases(ROWS, [], k=0)


def test_each_case_gets_a_sentence_from_its_pixels_or_its_numbers() -> None:
    sec = cases_section(ROWS, [dark_clean_sample()], k=4)
    sentences = [case["sentence"] for case in sec.data["cases"]]
    assert sentences[0] == (
        "single-id/clean #007: a clean dark flat crop; the output brightened by 60 levels: "
        "100.0 -> 14.0 dB (-86.0)."
    )
    assert sentences[1] == (
        "unseen-content/clean #001: a clean crop; the model altered an image it should have "
        "left unchanged: 100.0 -> 43.0 dB (-57.0)."
    )
    assert sentences[2] == (
        "single-id/noise #003: a crop with a level-id noise degradation; the restoration made "
        "it worse than its input: 25.0 -> 22.0 dB (-3.0)."
    )
    blocks = [b.kind for b in sec.blocks]
    assert blocks == ["paragraph", "table", "table", "figure"]
    assert sec.blocks[1].rows[0] == [sentences[0]] and sec.blocks[2].header == ["single-id inputs"]
    with Image.open(io.BytesIO(sec.figures["cases.png"])) as im:
        assert im.format == "PNG"  # the one case the report restored, as thumbnails


def test_without_rows_the_samples_are_ranked_and_nothing_harmed_says_so() -> None:
    samples = [make_sample("single-id", "noise", 1, gain=-2.0), dark_clean_sample()]
    sec = cases_section(None, samples)
    assert [(c["kind"], c["id"]) for c in sec.data["cases"]] == [("clean", "007"), ("mild", "001")]
    assert "the images of this report" in sec.blocks[0].text
    calm = cases_section(None, [make_sample("single-id", "noise", 1, gain=0.5)])
    assert calm.data["cases"] == [] and "nothing to look at" in calm.blocks[-1].text
    assert not calm.figures


def test_what_changed_names_brightness_contrast_colour_and_detail() -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(60, 200, size=(24, 24, 3)).astype(np.uint8)
    assert what_changed(image, image) == []
    grey = ((image.astype(np.float64) - 128) * 0.3 + 128).astype(np.uint8)
    assert any(c.startswith("lost contrast") for c in what_changed(image, grey))
    red = image.copy()
    red[..., 0] = np.clip(red[..., 0].astype(int) + 60, 0, 255).astype(np.uint8)
    assert "shifted colour towards red" in what_changed(image, red)
    flat = np.full_like(image, int(image.mean()))
    assert "smoothed away fine detail" in what_changed(image, flat)
    assert looks(np.zeros((4, 4, 3), np.uint8)) == "dark flat"
    assert looks(image) == ""


def test_cases_in_the_report(report: tuple[Path, dict]) -> None:
    out, result = report
    cases = result["cases"]["cases"]
    assert [(c["kind"], c["family"], c["psnr_out"]) for c in cases] == [
        ("clean", "clean", 14.0),
        ("mild", "noise", 22.0),
    ]
    page = (out / "index.html").read_text()
    assert cases[0]["sentence"].split(";")[0] in page and "100.0 -&gt; 14.0 dB" in page
