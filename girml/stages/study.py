"""Stage ``study``: the leaderboard of every evaluated method, with 95% bootstrap intervals.

Reads the evaluate stage's per-image rows; writes metrics/study.json, plots/study.csv and
reports/study/index.html, and logs one MLflow parent run with a child run per method.
"""

from __future__ import annotations

from pathlib import Path

from girml.evaluation.study import log_study, run_study
from girml.paths import METRICS_DIR, STUDY_DIR, STUDY_JSON, STUDY_PLOT
from girml.stages.contract import EXPERIMENT, Echo, StageParams
from girml.tracking import mlflow as tracking


def run(params: Path, echo: Echo, log_mlflow: bool = True) -> None:
    """Build and write the leaderboard; log it to MLflow unless ``log_mlflow`` is False."""
    cfg = StageParams(params, "study").section("study")
    board = run_study(
        METRICS_DIR / "per_image.csv",
        STUDY_JSON,
        STUDY_PLOT,
        STUDY_DIR,
        cfg.reference,
        cfg.seed,
        n_boot=cfg.n_boot,
    )
    echo(f"ranking: {', '.join(board.names())}; wrote {STUDY_JSON}, {STUDY_PLOT}, {STUDY_DIR}/")
    if log_mlflow:
        tags = tracking.provenance_tags(Path.cwd(), params)
        run_id = log_study(board, Path.cwd(), EXPERIMENT, tags=tags)
        echo(f"logged MLflow run {run_id} (study) with one child run per method")
