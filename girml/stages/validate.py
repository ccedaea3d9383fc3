"""Stage ``validate``: Great Expectations checks over manifests, pairs and recipes, written as
``reports/validation/result.json`` and a self-contained page, ``reports/validation/index.html``."""

from __future__ import annotations

from pathlib import Path

from girml.core.paths import BENCH_DIR, CLEAN_DIR, PAIRS_DIR, VALIDATION_DIR
from girml.data.validate import validate_data
from girml.stages.contract import Echo, StageFailed, StageParams


def run(params: Path, echo: Echo) -> None:
    """Validate the data; exit code 1 (after the summary) when a check fails."""
    reads = StageParams(params, "validate")
    spec = reads.section("degradations")
    cfg = reads.section("validate")
    min_size = reads.value("collect.min_size")
    held_category = reads.value("synthesize.unseen_content_category")
    report = validate_data(
        CLEAN_DIR, PAIRS_DIR, BENCH_DIR, spec, cfg, min_size, held_category, VALIDATION_DIR
    )
    echo(report.summary())
    echo(f"result: {VALIDATION_DIR / 'result.json'}  report: {report.page}")
    if not report.success:
        raise StageFailed("", 1)  # the summary said what failed
