"""girml.interpret.sections_sensitivity: section 3, PSNR gain against degradation strength."""

from __future__ import annotations

import shutil
from pathlib import Path

from girml.config import DegradationsConfig, parse_section
from girml.evaluation.bench import Bench
from girml.interpret.sections_sensitivity import sensitivity_section
from tests.interpret.common import CFG, nonlinear_tiny_model

# Every param a fixed value: nothing to sweep.
FIXED = {
    "families": {
        "noise": {"ops": {"gaussian_noise": {"params": {"sigma": 25}}}},
        "jpeg": {"ops": {"jpeg": {"params": {"quality": 50}}}},
    }
}


def test_families_without_a_range_say_why(data: Path) -> None:
    spec = parse_section(FIXED, "degradations", DegradationsConfig)
    sec = sensitivity_section(nonlinear_tiny_model(), Bench(data / "bench"), spec, CFG, None, None)
    assert sec.data["available"] is False
    assert sec.data["reason"] == "no trained family has a numeric parameter range to sweep"
    assert sec.data["images"] == CFG.sensitivity_images
    for family in ("noise", "jpeg"):
        record = sec.data["families"][family]
        assert record["available"] is False and "no numeric range to sweep" in record["reason"]


def test_no_single_id_images_says_why(data: Path, spec: DegradationsConfig, tmp_path: Path) -> None:
    shutil.copytree(data / "bench" / "unseen", tmp_path / "unseen")
    sec = sensitivity_section(nonlinear_tiny_model(), Bench(tmp_path), spec, CFG, None, None)
    assert sec.data == {
        "available": False,
        "reason": "no single-id benchmark images to take clean crops from",
    }


def test_sensitivity_in_the_report(report: tuple[Path, dict]) -> None:
    _, result = report
    curves = result["sensitivity"]["families"]
    assert set(curves) == {"noise", "blur", "jpeg"}  # the trained families
    for family, curve in curves.items():
        values = curve["values"]
        assert len(curve["gain"]["model"]) == len(values) >= CFG.sensitivity_levels
        for bounds in (curve["id_range"], curve["ood_range"]):
            assert min(values) <= bounds[0] and bounds[1] <= max(values)
            assert any(bounds[0] <= v <= bounds[1] for v in values), family
    assert curves["noise"]["baseline"] == "nlm"  # named by eval.json
    labels = {seg["label"] for seg in curves["noise"]["bench_segments"]}
    assert labels == {
        "unified (bench single-id)",
        "unified (bench single-ood)",
        "specialist (bench single-id)",
        "specialist (bench single-ood)",
    }
    segments = {seg["label"]: seg for seg in curves["noise"]["bench_segments"]}
    assert segments["specialist (bench single-id)"]["gain"] == 6.0  # per_family.csv
    assert segments["unified (bench single-ood)"]["range"] == curves["noise"]["ood_range"]
    assert curves["blur"]["bench_segments"] == []  # per_family.csv has no blur row
