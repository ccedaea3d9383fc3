"""Stage ``evaluate``: benchmark models/latest, the baselines and @champion; decide the champion.

With ``evaluate.specialists`` on it also scores the networks of models/specialists/ (the
``specialists`` stage trains them). Writes metrics/eval.json, metrics/per_family.csv,
metrics/per_image.csv, plots/ and metrics/method_costs.json (each method's restoring time and
parameter count, for the study), then records the decision: the registry's alias and the new
version's MLflow run.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from girml.artifacts.champion import apply_decision
from girml.artifacts.promotion import evaluate_and_promote
from girml.artifacts.specialists import load_specialists
from girml.config import EvaluateConfig
from girml.core.paths import (
    BENCH_DIR,
    CLEAN_DIR,
    METRICS_DIR,
    MODEL_DIR,
    PLOTS_DIR,
    SPECIALISTS_DIR,
    TRAIN_METRICS,
)
from girml.evaluation.methods import MethodError
from girml.stages.contract import Echo, StageFailed, StageParams


def run(params: Path, echo: Echo) -> None:
    """Evaluate every suite, let the promotion gate decide and record the decision in MLflow."""
    reads = StageParams(params, "evaluate")
    cfg = reads.section("evaluate")
    specialists = _specialists(cfg)
    try:
        result = evaluate_and_promote(
            MODEL_DIR,
            BENCH_DIR,
            CLEAN_DIR,
            cfg,
            METRICS_DIR,
            PLOTS_DIR,
            Path.cwd(),
            specialists,
            train_metrics=TRAIN_METRICS,
        )
    except MethodError as exc:  # an outside method: one line naming it, and its exit code
        raise StageFailed(str(exc), exc.code) from None
    apply_decision(
        result.decision,
        result.registered.version,
        result.registered.run_id,
        result.metrics,
        result.previous,
        artifacts=result.attachments,
    )
    echo(result.summary())


def _specialists(cfg: EvaluateConfig) -> dict[str, nn.Module] | None:
    """The specialists stage's networks when ``evaluate.specialists`` is on, else None.

    Raises:
        StageFailed: it is on and models/specialists/ lists none (written while it was off).
    """
    if not cfg.specialists:
        return None
    specialists = load_specialists(SPECIALISTS_DIR)
    if not specialists:
        raise StageFailed(
            f"evaluate.specialists is on but {SPECIALISTS_DIR} has no specialists: run "
            "`girml specialists` first"
        )
    return specialists
