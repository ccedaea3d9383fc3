"""Stage ``evaluate``: benchmark models/latest, the baselines and @champion; decide the champion.

Writes metrics/eval.json, metrics/per_family.csv, metrics/per_image.csv and plots/.
"""

from __future__ import annotations

from pathlib import Path

from girml.evaluation.methods import MethodError
from girml.evaluation.promotion import SpecialistInputs, evaluate_and_promote
from girml.paths import (
    BENCH_DIR,
    CLEAN_DIR,
    METRICS_DIR,
    MODEL_DIR,
    PAIRS_DIR,
    PLOTS_DIR,
    SPECIALIST_DIR,
    TRAIN_METRICS,
)
from girml.stages.contract import Echo, StageFailed, StageParams


def run(params: Path, echo: Echo) -> None:
    """Evaluate every suite and let the promotion gate decide."""
    reads = StageParams(params, "evaluate")
    cfg = reads.section("evaluate")
    specialists = None
    if cfg.specialists:
        spec = reads.section("degradations")
        specialists = SpecialistInputs(spec, PAIRS_DIR, SPECIALIST_DIR)
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
    echo(result.summary())
