"""Stage ``study``: the leaderboard of every evaluated method, with 95% bootstrap intervals.

Reads the evaluate stage's per-image rows and measured costs (metrics/method_costs.json: each
method's seconds per megapixel and parameter count; read if present, as outputs written before
it existed lack it), for each approach of ``study.approaches`` the approach-eval stage's
(metrics/approaches/<name>/: rows and costs), and the unified model's parameter count from
models/latest/config.yaml (``stats``, where the costs file has none); writes metrics/study.json,
plots/study.csv and reports/study/index.html, and logs one MLflow parent run with a child run
per method. The protocol results in metrics/protocols/ are shown beside the published ones when
the protocol stages have run (read if present: not a DVC dependency, as the quick profile runs
no protocol).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from girml.artifacts.store import read_model_config
from girml.core.paths import (
    APPROACH_COST,
    APPROACH_METRICS_DIR,
    APPROACH_ROWS,
    METRICS_DIR,
    MODEL_DIR,
    PROTOCOL_METRICS_DIR,
    STUDY_DIR,
    STUDY_JSON,
    STUDY_PLOT,
)
from girml.evaluation.costs import METHOD_COSTS_FILE, read_method_costs
from girml.evaluation.harness import MODEL_METHOD
from girml.evaluation.leaderboard import Cost
from girml.evaluation.study import log_study, run_study
from girml.stages.contract import EXPERIMENT, Echo, StageParams
from girml.tracking.provenance import provenance_tags


def run(params: Path, echo: Echo, log_mlflow: bool = True) -> None:
    """Build and write the leaderboard; log it to MLflow unless ``log_mlflow`` is False."""
    cfg = StageParams(params, "study").section("study")
    per_image = METRICS_DIR / "per_image.csv"
    measured = read_method_costs(METRICS_DIR / METHOD_COSTS_FILE, per_image)
    costs = dict(measured.costs) if measured else {}
    costs |= {name: _cost(APPROACH_METRICS_DIR / name / APPROACH_COST) for name in cfg.approaches}
    if (mine := model_cost(MODEL_DIR)) != Cost():
        costs[MODEL_METHOD] = _filled(costs.get(MODEL_METHOD, Cost()), mine)
    board = run_study(
        per_image,
        STUDY_JSON,
        STUDY_PLOT,
        STUDY_DIR,
        cfg.reference,
        cfg.seed,
        n_boot=cfg.n_boot,
        costs=costs,
        more=[APPROACH_METRICS_DIR / name / APPROACH_ROWS for name in cfg.approaches],
        protocols_dir=PROTOCOL_METRICS_DIR,
        cost_note=measured.note if measured else None,
    )
    echo(f"ranking: {', '.join(board.names())}; wrote {STUDY_JSON}, {STUDY_PLOT}, {STUDY_DIR}/")
    if log_mlflow:
        tags = provenance_tags(Path.cwd(), params)
        run_id = log_study(board, Path.cwd(), EXPERIMENT, tags=tags)
        echo(f"logged MLflow run {run_id} (study) with one child run per method")


def _cost(path: Path) -> Cost:
    """An approach's measured cost (``cost.json`` of its approach-eval stage)."""
    if not path.is_file():
        stage = f"approach-eval@{path.parent.name}"
        raise FileNotFoundError(f"{path} not found: run `dvc repro {stage}`")
    data = json.loads(path.read_text(encoding="utf-8"))
    return Cost(data.get("seconds_per_megapixel"), data.get("params"))


def _filled(cost: Cost, fallback: Cost) -> Cost:
    """``cost`` with its unknown fields taken from ``fallback``."""
    per_mp = cost.seconds_per_megapixel
    return replace(
        cost,
        seconds_per_megapixel=fallback.seconds_per_megapixel if per_mp is None else per_mp,
        params=fallback.params if cost.params is None else cost.params,
    )


def model_cost(model_dir: Path) -> Cost:
    """The unified model's parameter count from ``<model_dir>/config.yaml`` (``stats.params``,
    written by the train stage), for outputs of an evaluate stage that did not count it (no
    metrics/method_costs.json). Unknown without the folder or the key."""
    try:
        stats = read_model_config(model_dir).get("stats")
    except FileNotFoundError:
        return Cost()
    params = stats.get("params") if isinstance(stats, dict) else None
    return Cost(params=int(params)) if isinstance(params, int) else Cost()
