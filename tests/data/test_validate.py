"""Great Expectations validation: passes on clean data, fails on leakage and bad recipes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from girml.config import DegradationsConfig, ValidateConfig, parse_section
from girml.data.validate import validate_data
from tests.factories import synthesize_tiny, tiny_params


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize_tiny(tmp_path_factory.mktemp("data"))


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def _validate(root: Path, out: Path, **overrides):
    raw = tiny_params()
    spec = parse_section(raw["degradations"], "degradations", DegradationsConfig)
    cfg = parse_section({**raw["validate"], **overrides}, "validate", ValidateConfig)
    return validate_data(
        root / "clean", root / "pairs", root / "bench", spec, cfg, 32, "scientific", out
    )


def test_clean_data_passes_and_writes_reports(synthesized: Path, tmp_path: Path) -> None:
    report = _validate(synthesized, tmp_path / "report")
    assert report.success, report.summary()
    result = json.loads((tmp_path / "report" / "result.json").read_text())
    assert result["success"] is True and result["evaluated_expectations"] >= 25
    assert result["rows"]["train_pairs"] == 24
    index = tmp_path / "report" / "docs" / "index.html"
    assert index.is_file() and "manifest" in index.read_text()


def test_leaked_split_fails(synthesized: Path, tmp_path: Path) -> None:
    root = _copy(synthesized, tmp_path / "data")
    manifest = root / "clean" / "manifest.csv"
    rows = list(csv.DictReader(manifest.open()))
    for row in rows:  # a benchmark photo relabelled as training data: leakage
        if row["id"] == "a0000000000000a4":
            row["split"] = "train"
    with manifest.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    report = _validate(root, tmp_path / "report")
    assert not report.success
    broken = {(f["table"], f["kwargs"].get("column")) for f in report.failures}
    assert broken == {("bench_pairs", "source_split")}


def test_benchmark_photo_in_training_pairs_fails(synthesized: Path, tmp_path: Path) -> None:
    root = _copy(synthesized, tmp_path / "data")
    jsonl = root / "pairs" / "train" / "pairs.jsonl"
    recs = [json.loads(line) for line in jsonl.read_text().splitlines()]
    recs[0]["source_id"] = "a0000000000000a4"  # a test-split photo used for training
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in recs))
    report = _validate(root, tmp_path / "report")
    broken = {(f["table"], f["kwargs"].get("column")) for f in report.failures}
    assert ("train_pairs", "source_split") in broken
    assert ("bench_pairs", "source_id") in broken
    assert "a0000000000000a4" in report.summary()


def test_out_of_range_parameter_fails(synthesized: Path, tmp_path: Path) -> None:
    root = _copy(synthesized, tmp_path / "data")
    jsonl = root / "bench" / "single-id" / "noise" / "recipes.jsonl"
    recs = [json.loads(line) for line in jsonl.read_text().splitlines()]
    recs[0]["recipe"]["steps"][0]["params"]["sigma"] = 65.0  # inside ood, outside the id range
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in recs))
    report = _validate(root, tmp_path / "report")
    assert not report.success
    failed = [f for f in report.failures if f["table"] == "recipe_steps"]
    assert failed and failed[0]["unexpected_count"] == 1
    result = json.loads((tmp_path / "report" / "result.json").read_text())
    assert result["success"] is False and result["failed_expectations"] >= 1


def test_broken_image_and_implausible_psnr_fail(synthesized: Path, tmp_path: Path) -> None:
    root = _copy(synthesized, tmp_path / "data")
    lq = next((root / "pairs" / "val" / "lq").glob("*.png"))
    gt = root / "pairs" / "val" / "gt" / lq.name
    lq.write_bytes(gt.read_bytes())  # "degraded" image identical to GT: PSNR = inf
    next((root / "clean" / "images").glob("*.png")).write_bytes(b"not a png")
    report = _validate(root, tmp_path / "report")
    broken = {(f["table"], f["kwargs"].get("column")) for f in report.failures}
    assert ("val_pairs", "psnr_finite") in broken
    assert ("manifest", "decodes") in broken


def test_clean_family_must_be_its_ground_truth_without_steps(
    synthesized: Path, tmp_path: Path
) -> None:
    clean = synthesized / "bench" / "single-id" / "clean"
    assert (clean / "recipes.jsonl").is_file()  # present, and passing (PSNR infinite) above
    root = _copy(synthesized, tmp_path / "data")
    clean = root / "bench" / "single-id" / "clean"
    lq = next((clean / "lq").glob("*.png"))
    lq.write_bytes((root / "bench" / "single-id" / "noise" / "lq" / lq.name).read_bytes())
    jsonl = clean.parent.parent / "unseen-content" / "clean" / "recipes.jsonl"
    recs = [json.loads(line) for line in jsonl.read_text().splitlines()]
    noise = json.loads((jsonl.parents[1] / "noise" / "recipes.jsonl").read_text().split("\n")[0])
    recs[0]["recipe"] = noise["recipe"]  # a degradation step in the clean family
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in recs))
    report = _validate(root, tmp_path / "report")
    broken = {(f["table"], f["kwargs"].get("column")) for f in report.failures}
    assert broken == {("bench_pairs", "identical"), ("bench_pairs", "steps")}
    assert f"single-id/clean/{lq.stem}" in report.summary()
