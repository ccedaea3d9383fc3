"""girml.interpret.sections_lam: section 2, local attribution maps and the diffusion index."""

from __future__ import annotations

from pathlib import Path

from girml.interpret.sections_lam import LAM_SUITES, lam_section
from tests.interpret.common import CFG, make_sample, nonlinear_tiny_model

FAST = CFG.model_copy(update={"lam_steps": 2, "lam_window": 6})


def test_one_map_per_degraded_family_of_the_lam_suites() -> None:
    samples = [
        make_sample("single-id", "noise", 0),
        make_sample("single-id", "noise", 1),  # over lam_images_per_family
        make_sample("single-id", "clean", 2),  # nothing degraded: no LAM
        make_sample("mixed", "blur+noise", 3),  # not a LAM suite
        make_sample("unseen", "haze", 4),
    ]
    sec = lam_section(nonlinear_tiny_model(), samples, FAST)
    groups = sec.data["groups"]
    assert list(groups) == ["single-id/noise", "unseen/haze"]
    assert [r["id"] for r in groups["single-id/noise"]["images"]] == ["000"]
    for group in groups.values():
        (record,) = group["images"]
        assert 0.0 <= record["di"] <= 100.0 and group["di"] == record["di"]
        assert record["window"][2] == 6
    assert sec.data["steps"] == 2
    assert set(sec.figures) == {f"lam_{suite}.png" for suite in LAM_SUITES} | {"lam_di.png"}


def test_no_degraded_image_says_why() -> None:
    samples = [make_sample("single-id", "clean", 0), make_sample("mixed", "noise", 1)]
    sec = lam_section(nonlinear_tiny_model(), samples, FAST)
    assert sec.data["available"] is False
    assert sec.data["reason"] == "no degraded benchmark image in suites ['single-id', 'unseen']"
    assert sec.figures == {}


def test_lam_in_the_report(report: tuple[Path, dict]) -> None:
    _, result = report
    groups = result["lam"]["groups"]
    assert set(groups) == {f"single-id/{f}" for f in ("noise", "blur", "jpeg")} | {
        "unseen/haze",
        "unseen/blur+jpeg",
    }
    for group in groups.values():
        assert 0.0 <= group["di"] <= 100.0
