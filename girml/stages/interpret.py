"""Stage ``interpret``: what the model learned (features, LAM, sensitivity, visual crops).

Writes reports/interpretation/ (self-contained index.html, figures/, interpretation.json) and
logs it to the model's MLflow run.
"""

from __future__ import annotations

from pathlib import Path

from girml.evaluation.promotion import registered_model
from girml.interpret.report import log_report, run_interpretation
from girml.models.store import load_model
from girml.paths import BENCH_DIR, CLEAN_DIR, INTERPRET_DIR, METRICS_DIR, MODEL_DIR, TRAIN_METRICS
from girml.stages.contract import Echo, StageParams


def run(params: Path, echo: Echo) -> None:
    """Build the report, then log it to the model's MLflow run when it has one."""
    reads = StageParams(params, "interpret")
    cfg = reads.section("interpret")
    spec = reads.section("degradations")
    run_interpretation(
        load_model(str(MODEL_DIR)),
        BENCH_DIR,
        spec,
        cfg,
        INTERPRET_DIR,
        eval_json=METRICS_DIR / "eval.json",
        per_family_csv=METRICS_DIR / "per_family.csv",
        clean_dir=CLEAN_DIR,
    )
    try:
        log_report(INTERPRET_DIR, registered_model(MODEL_DIR, TRAIN_METRICS).run_id, Path.cwd())
    except ValueError as exc:  # a model folder without MLflow provenance
        echo(f"not logged to MLflow: {exc}", err=True)
    echo(f"report: {INTERPRET_DIR / 'index.html'}")
