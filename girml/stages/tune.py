"""Stage ``tune``: Ray Tune search over ``tune.space``, logged to MLflow; writes tune/best.yaml
and trials.csv."""

from __future__ import annotations

from pathlib import Path

import torch

from girml.artifacts.loading import source_weights
from girml.core.cpu_isa import pin_cpu_isa
from girml.core.paths import PAIRS_DIR, TRIALS_CSV, TUNE_DIR, TUNED_PARAMS
from girml.stages.contract import EXPERIMENT, Echo, StageParams
from girml.tuning.outcome import log_search
from girml.tuning.results import write_best, write_trials_csv
from girml.tuning.search import tune


def run(params: Path, echo: Echo) -> None:
    """Search (resuming an interrupted search with the same settings), log the search to MLflow
    and write the winner."""
    reads = StageParams(params, "tune")
    cfg = reads.section("tune")
    model_cfg = reads.section("model")
    train_cfg = reads.section("train")
    # before any kernel runs; the Ray trials inherit the pinned environment
    pin_cpu_isa(None if torch.cuda.is_available() else train_cfg.cpu_isa)
    spec = reads.section("degradations") if train_cfg.online_degradation_prob > 0 else None
    # loaded once, before Ray starts: every trial starts from the same weights
    init = source_weights(train_cfg.init_from) if train_cfg.init_from is not None else None
    result = tune(cfg, model_cfg, train_cfg, PAIRS_DIR, TUNE_DIR, spec=spec, init=init)
    log_search(result, cfg, model_cfg, train_cfg, Path.cwd(), params, EXPERIMENT)
    write_best(result, TUNED_PARAMS)
    write_trials_csv(result, TRIALS_CSV)
    default = "n/a" if result.default_score is None else f"{result.default_score:.2f}"
    echo(
        f"searched {result.configs_searched} configurations in {result.wall_seconds:.0f} s; "
        f"best val PSNR-Y {result.best_score:.2f} dB (untuned default {default}) -> {TUNED_PARAMS}"
    )
