"""Stage ``interpret``: what the model learned (features, LAM, sensitivity, visual crops).

Writes reports/interpretation/ (self-contained index.html, figures/, interpretation.json) and
logs it to the model's MLflow run.
"""

from __future__ import annotations

import re
from pathlib import Path

from girml.artifacts.loading import load_model
from girml.artifacts.training_run import registered_model
from girml.core.paths import (
    BENCH_DIR,
    CLEAN_DIR,
    INTERPRET_DIR,
    METRICS_DIR,
    MODEL_DIR,
    TRAIN_METRICS,
)
from girml.interpret.report import log_report, run_interpretation
from girml.stages.contract import Echo, StageParams


def run(params: Path, echo: Echo, model: str | None = None, out: Path | None = None) -> None:
    """Build the report of models/latest and log it to its MLflow run when it has one.

    With ``model`` (a folder, release or MLflow URI: any approach of the study), the report of
    that model goes to ``out`` (default ``reports/interpretation-<name>``): the sections that
    read the evaluate stage's metrics of models/latest say "not available", and nothing is
    logged or written to the stage's own outputs.
    """
    reads = StageParams(params, "interpret")
    cfg = reads.section("interpret")
    spec = reads.section("degradations")
    if model is not None:
        out_dir = out if out is not None else other_report_dir(model)
        run_interpretation(load_model(model), BENCH_DIR, spec, cfg, out_dir, clean_dir=CLEAN_DIR)
        echo(f"report of {model}: {out_dir / 'index.html'}")
        return
    run_interpretation(
        load_model(str(MODEL_DIR)),
        BENCH_DIR,
        spec,
        cfg,
        INTERPRET_DIR,
        eval_json=METRICS_DIR / "eval.json",
        per_family_csv=METRICS_DIR / "per_family.csv",
        clean_dir=CLEAN_DIR,
        per_image_csv=METRICS_DIR / "per_image.csv",
    )
    try:
        log_report(INTERPRET_DIR, registered_model(MODEL_DIR, TRAIN_METRICS).run_id, Path.cwd())
    except ValueError as exc:  # a model folder without MLflow provenance
        echo(f"not logged to MLflow: {exc}", err=True)
    echo(f"report: {INTERPRET_DIR / 'index.html'}")


def other_report_dir(model: str) -> Path:
    """``reports/interpretation-<name>`` for a model given as a folder or URI, the name made of
    its last path parts (``models:/gir-restorer@champion`` -> ``gir-restorer-champion``)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", model.split(":/", 1)[-1]).strip("-.")
    return INTERPRET_DIR.with_name(f"{INTERPRET_DIR.name}-{name or 'model'}")
