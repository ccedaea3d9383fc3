"""Stage ``approach-eval@<name>``: score one approach of the study on every benchmark image.

Reads models/approaches/ (the routed approach also uses its specialists) or models/release;
writes metrics/approaches/<name>/per_image.csv and cost.json, which the ``study`` stage ranks.
"""

from __future__ import annotations

from pathlib import Path

from girml.artifacts.loading import load_model
from girml.core.paths import (
    APPROACH_COST,
    APPROACH_METRICS_DIR,
    APPROACH_ROWS,
    APPROACHES_DIR,
    BENCH_DIR,
    CLEAN_DIR,
    PAIRS_DIR,
    RELEASE_DIR,
)
from girml.evaluation.approaches import evaluate_approach, load_restorer, write_approach_outputs
from girml.stages.approach import approach_of
from girml.stages.contract import Echo, StageFailed, StageParams


def run(params: Path, name: str, echo: Echo) -> None:
    """Evaluate approach ``name``; image failures are listed and the rest is scored."""
    reads = StageParams(params, "approach-eval", key=name)
    approach = approach_of(reads, name)
    cfg = reads.section("evaluate")
    restorer, chosen = load_restorer(
        approach,
        APPROACHES_DIR / name,
        APPROACHES_DIR,
        RELEASE_DIR,
        BENCH_DIR,
        PAIRS_DIR,
        cfg,
        load_model,
    )
    result, cost = evaluate_approach(name, restorer, BENCH_DIR, CLEAN_DIR, cfg)
    for failure in result.failures:
        echo(f"approach {name}: no output for {failure.describe()}", err=True)
    if not result.rows:
        raise StageFailed(f"approach {name}: no image was scored")
    out = APPROACH_METRICS_DIR / name
    write_approach_outputs(result.rows, {**cost, **chosen}, out, APPROACH_ROWS, APPROACH_COST)
    echo(
        f"approach {name}: {len(result.rows)} images scored, {len(result.failures)} failed, "
        f"{cost['seconds_per_megapixel']} s/MP, {cost['params']} parameters; wrote {out}/"
    )
