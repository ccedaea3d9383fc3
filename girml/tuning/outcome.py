"""The outcome of a search: the finished Ray Tune experiment read into a
:class:`~girml.tuning.results.TuneResult` (the first trial created is the untuned default),
and that result logged to MLflow from the driver (:func:`log_search`, which the ``tune`` stage
calls once :func:`girml.tuning.search.tune` has returned).

MLflow is written from the driver only, after the search: SQLite stores do not like parallel
writers.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pyarrow.fs
from ray import tune as ray_tune
from ray.tune.experiment import Trial

from girml.config import ModelConfig, TrainConfig, TuneConfig
from girml.tracking.logs import log_metrics, log_params_flat
from girml.tracking.provenance import provenance_tags
from girml.tracking.runs import start_run
from girml.tuning.results import METRIC, TuneResult
from girml.tuning.space import decode_params
from girml.tuning.trial import REPORTED

ENDED = frozenset({"TERMINATED", "ERROR"})  # Ray trial statuses of trials that will not resume


class SearchInterrupted(RuntimeError):
    """Ray Tune returned before every trial ended; calling :func:`tune` again resumes."""


def _curve(frame: Any) -> list[dict[str, float]]:
    """Validation reports of one trial by step; a step re-reported after a resume counts once."""
    if frame is None or frame.empty or "step" not in frame:
        return []
    frame = frame.dropna(subset=["step"]).drop_duplicates("step", keep="last").sort_values("step")
    return [
        {"step": float(row["step"]), **{key: float(row[name]) for name, key in REPORTED.items()}}
        for _, row in frame.iterrows()
    ]


def creation_index(trial: Trial) -> int:
    """A trial's creation counter: both Ray searchers start its ``experiment_tag`` with it.

    The first trial created is the searcher's ``points_to_evaluate[0]``, the default. (Trial
    ids are no clue: Optuna's are random.)
    """
    return int(trial.experiment_tag.split("_", 1)[0])


def _check_complete(trials: list[Trial], cfg: TuneConfig, wall_seconds: float) -> None:
    """Refuse a search that was stopped before it ended.

    Raises:
        SearchInterrupted: some trials have not ended, or fewer than ``num_samples + 1`` were
            created while the time budget was not spent.
    """
    unfinished = sum(t.status not in ENDED for t in trials)
    # the time budget legitimately ends a search before all trials were created
    budget_spent = cfg.time_budget_s is not None and wall_seconds >= cfg.time_budget_s
    missing = 0 if budget_spent else cfg.num_samples + 1 - len(trials)
    if unfinished or missing > 0:
        raise SearchInterrupted(
            f"the search was interrupted ({unfinished} unfinished trial(s), {max(missing, 0)} "
            "not started); run it again to resume"
        )


def _trial_row(
    trial: Trial, default: bool, curve: list[dict[str, float]], cfg: TuneConfig
) -> dict[str, Any]:
    """One ``trials.csv`` row: the trial's values, its last and best scores, steps and status."""
    last = curve[-1] if curve else {key: math.nan for key in (*REPORTED.values(), "step")}
    steps = 0 if not curve else int(last["step"])
    return {
        "trial_id": trial.trial_id,
        "default": default,
        **decode_params(cfg.space, trial.config),
        **{key: last[key] for key in REPORTED.values()},
        f"{METRIC}_best": max((p[METRIC] for p in curve), default=math.nan),
        "steps": steps,
        "status": trial.status,
        "stopped_early": trial.status == "TERMINATED" and steps < cfg.steps_per_trial,
        "seconds": float((trial.last_result or {}).get("time_total_s", math.nan)),
    }


def _best_row(rows: list[dict[str, Any]], cfg: TuneConfig, experiment_path: str) -> dict[str, Any]:
    """The best scored trial, preferring those that ran every step (equal budgets).

    Raises:
        RuntimeError: no trial reported a score.
    """
    scored = [r for r in rows if r["status"] != "ERROR" and not math.isnan(r[METRIC])]
    if not scored:
        errors = sum(r["status"] == "ERROR" for r in rows)
        raise RuntimeError(
            f"no trial reported a score ({errors} failed: see error.txt in their folders "
            f"under {experiment_path})"
        )
    pool = [r for r in scored if r["steps"] >= cfg.steps_per_trial] or scored
    return max(pool, key=lambda r: r[METRIC])


def collect_results(
    experiment_path: str,
    filesystem: pyarrow.fs.FileSystem | None,
    cfg: TuneConfig,
    resumed: bool,
    wall_seconds: float,
) -> TuneResult:
    """Read a Ray Tune experiment into a :class:`TuneResult` (the first trial is the default).

    Args:
        experiment_path: the experiment folder (``ResultGrid.experiment_path``).
        filesystem: its pyarrow filesystem (``ResultGrid.filesystem``); None = local.
        cfg: the search's config.
        resumed: recorded in the result.
        wall_seconds: recorded in the result.

    Raises:
        SearchInterrupted: some trials have not ended, or fewer than ``num_samples + 1`` were
            created while the time budget was not spent (the search was stopped, e.g. Ctrl+C).
        RuntimeError: no trial reported a score.
    """
    analysis = ray_tune.ExperimentAnalysis(experiment_path, storage_filesystem=filesystem)
    frames = analysis.trial_dataframes
    trials = sorted(analysis.trials, key=creation_index)
    _check_complete(trials, cfg, wall_seconds)
    curves = {trial.trial_id: _curve(frames.get(trial.trial_id)) for trial in trials}
    rows = [
        _trial_row(trial, index == 0, curves[trial.trial_id], cfg)
        for index, trial in enumerate(trials)
    ]
    best = _best_row(rows, cfg, experiment_path)
    default_score = rows[0][METRIC] if rows and not math.isnan(rows[0][METRIC]) else None
    return TuneResult(
        best_config={key: best[key] for key in cfg.space},
        best_score=best[METRIC],
        best_trial_id=best["trial_id"],
        trials=rows,
        curves=curves,
        default_score=default_score,
        steps_per_trial=cfg.steps_per_trial,
        resumed=resumed,
        wall_seconds=wall_seconds,
    )


def log_search(
    result: TuneResult,
    cfg: TuneConfig,
    base_model: ModelConfig,
    base_train: TrainConfig,
    project_root: Path,
    params_path: Path | None = None,
    experiment: str = "gir",
) -> str:
    """Log the search to MLflow from this (driver) process; returns the parent run id.

    One parent run ``tune`` (params: the tune config and base sections, flattened; metrics:
    best and default scores) and one nested child run per trial (params: its searched values;
    metrics: its validation curve by step; tags: ``trial_id``, ``status``, ``default``).
    """
    tags = {"stage": "tune"}
    if params_path is not None:
        tags.update(provenance_tags(project_root, params_path))
    gain = None if result.default_score is None else result.best_score - result.default_score
    summary = {
        f"best.{METRIC}": result.best_score,
        **({} if result.default_score is None else {f"default.{METRIC}": result.default_score}),
        **({} if gain is None else {"best_gain_over_default": gain}),
        "configs_searched": float(result.configs_searched),
        "wall_seconds": result.wall_seconds,
    }
    with start_run(
        experiment, project_root, run_name="tune", tags=tags, log_system_metrics=False
    ) as parent:
        log_params_flat({"tune": cfg, "model": base_model, "train": base_train})
        log_metrics(result.steps_per_trial, summary)
        for row in result.trials:
            child_tags = {
                "trial_id": row["trial_id"],
                "status": row["status"],
                "default": str(row["default"]).lower(),
            }
            with start_run(
                experiment,
                project_root,
                run_name=f"trial-{row['trial_id']}",
                tags=child_tags,
                log_system_metrics=False,
                nested=True,
            ):
                log_params_flat({key: row[key] for key in cfg.space})
                for point in result.curves[row["trial_id"]]:
                    values = {k: v for k, v in point.items() if k != "step"}
                    log_metrics(int(point["step"]), values)
        return str(parent.info.run_id)
