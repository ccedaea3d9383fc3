"""Great Expectations validation: passes on clean data, fails on leakage and bad recipes, and writes
every expectation's outcome to result.json and a page that renders offline in a real browser."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from girml.config import DegradationsConfig, ValidateConfig, parse_section
from girml.data.validate import ValidationReport, validate_data
from tests.browser import Browser
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
    records = result["expectations"]
    assert len(records) == result["evaluated_expectations"] and all(r["success"] for r in records)
    assert {r["table"] for r in records} == set(result["rows"])
    page = (tmp_path / "report" / "index.html").read_text()
    assert f"Validation passed: all {len(records)} expectations met." in page
    assert page.count("✓ met") == len(records) and "✗ broken" not in page
    assert not (tmp_path / "report" / "docs").exists()  # no GX Data Docs any more


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


@pytest.fixture(scope="module")
def broken(
    synthesized: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, ValidationReport, str]:
    """Validation of data with an undecodable photo and a val pair whose LQ is its GT: the
    report folder, the report and the broken photo's id."""
    root = _copy(synthesized, tmp_path_factory.mktemp("broken") / "data")
    lq = next((root / "pairs" / "val" / "lq").glob("*.png"))
    gt = root / "pairs" / "val" / "gt" / lq.name
    lq.write_bytes(gt.read_bytes())  # "degraded" image identical to GT: PSNR = inf
    photo = next((root / "clean" / "images").glob("*.png"))
    photo.write_bytes(b"not a png")
    return root.parent / "report", _validate(root, root.parent / "report"), photo.stem


def test_broken_image_and_implausible_psnr_fail(broken: tuple[Path, ValidationReport, str]) -> None:
    out, report, photo = broken
    failures = {(f["table"], f["kwargs"].get("column")): f for f in report.failures}
    assert ("val_pairs", "psnr_finite") in failures
    assert failures["manifest", "decodes"]["examples"] == [{"decodes": False, "id": photo}]
    page = (out / "index.html").read_text()
    n, bad = report.evaluated, len(report.failures)
    assert f"Validation FAILED: {bad} of {n} expectations broken." in page
    assert page.count("✗ broken") == bad and page.count("✓ met") == n - bad
    assert f"id={photo}" in page  # the broken photo is named on the page


def test_the_page_renders_offline_in_headless_chromium(
    broken: tuple[Path, ValidationReport, str], browser: Browser
) -> None:
    out, report, _ = broken
    page = browser.open(out / "index.html")
    result = json.loads((out / "result.json").read_text())
    tables = list(dict.fromkeys(r["table"] for r in result["expectations"]))  # suite order
    assert sorted(tables) == sorted(result["rows"])
    per_table = [sum(r["table"] == t for r in report.expectations) for t in tables]
    page.assert_renders_offline(min_tables=1 + len(tables))
    assert page.tables == [len(tables), *per_table]  # the summary, then one per table
    assert page.title == "GIR data validation: FAILED" and page.scripts == 0


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
