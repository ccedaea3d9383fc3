"""Hyperparameter search on Ray Tune: the only module of girml that imports Ray.

Each trial runs :func:`girml.training.train`, the training loop of the ``train`` stage, on the
base ``model``/``train`` configs with the trial's values laid over them
(:func:`girml.tuning.space.trial_configs`) and a budget of ``tune.steps_per_trial`` steps. It
validates every ``tune.report_every`` steps and reports ``val_psnr`` (= ``val.psnr_y_model``,
maximised) and ``step`` to Tune, which ASHA uses as its time axis. The untuned default is
evaluated first as a reference trial (``points_to_evaluate``), on top of ``num_samples``
searched configurations.

Ray:

- ``RAY_ADDRESS`` (else ``tune.address``) joins an existing cluster at its GCS address
  (``host:port``); a cluster with token authentication (what ``ray start`` does by default
  since Ray 2.59) also needs ``RAY_AUTH_MODE=token`` and its token (``RAY_AUTH_TOKEN`` or
  ``RAY_AUTH_TOKEN_PATH``), else the join fails with :class:`girml.errors.ServiceUnreachable`
  saying so. Otherwise a local Ray is started on every core and shut down at the end. Ray's
  usage statistics are disabled (``RAY_USAGE_STATS_ENABLED=0``, unless set) since the pipeline
  runs offline. On a cluster, every node needs ``girml`` installed, the pairs at the same path
  and ``work_dir`` on a shared file system (trial checkpoints live there).
- Results go to ``tune.storage_path/gir-tune`` (default ``<work_dir>/ray_results``), a local
  folder or ``s3://bucket/prefix`` through pyarrow; for an S3-compatible server set
  ``AWS_ENDPOINT_URL`` (read by pyarrow >= 15) and the usual AWS credentials.

Resuming: the experiment name is fixed and a fingerprint of the search (the tune config, the
base configs and the training/validation pairs) is stored beside Ray's state. When an
experiment with the same fingerprint can be restored, :func:`tune` continues it: finished
trials are kept, unfinished ones restart and resume from their training checkpoints in
``<work_dir>/trials/<trial id>`` (written every ``report_every`` steps; removed once the search
has ended). Anything else is wiped and the search starts afresh. Ray saves its experiment state
at most every ``TUNE_GLOBAL_CHECKPOINT_S`` seconds (set to 2 here unless set), so a trial that
finished just before a kill may re-validate once on resume.

Searches are reproducible given ``tune.seed`` as far as Ray allows: the sampled configurations
are, but with parallel trials the order in which results arrive (and hence ASHA's decisions and
Optuna's later suggestions) depends on timing.

MLflow (optional) is written from the driver only, after the search: SQLite stores do not
like parallel writers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.fs
import ray
import torch
from ray import tune as ray_tune
from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler
from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter, SearchAlgorithm
from ray.tune.search.optuna import OptunaSearch

from girml.config import DegradationsConfig, ModelConfig, SearchDim, TrainConfig, TuneConfig
from girml.errors import ServiceUnreachable
from girml.process import start_reaper, stop_reaper
from girml.tracking import mlflow as tracking
from girml.training.checkpoints import UNFINGERPRINTED
from girml.training.loop import train
from girml.tuning.results import METRIC, TuneResult
from girml.tuning.space import (
    check_space,
    decode_params,
    default_params,
    encode_value,
    trial_configs,
)

EXPERIMENT = "gir-tune"
FINGERPRINT_FILE = "girml-search.json"
TUNE_METRIC = "val_psnr"  # Tune's name for METRIC (val.psnr_y_model)
# reported to Tune at each validation -> the name used in TuneResult rows and curves
REPORTED = {
    TUNE_METRIC: METRIC,
    "val_psnr_gain": "val.psnr_gain",
    "val_psnr_input": "val.psnr_y_input",
}
RAY_ENV_DEFAULTS = {"RAY_USAGE_STATS_ENABLED": "0", "TUNE_GLOBAL_CHECKPOINT_S": "2"}
# tune fields that do not change what the search computes
UNFINGERPRINTED_TUNE = {
    "address",
    "storage_path",
    "time_budget_s",
    "cpus_per_trial",
    "gpus_per_trial",
}


ENDED = frozenset({"TERMINATED", "ERROR"})  # Ray trial statuses of trials that will not resume


class SearchInterrupted(RuntimeError):
    """Ray Tune returned before every trial ended; calling :func:`tune` again resumes."""


@dataclass(frozen=True)
class TrialJob:
    """Everything a trial needs besides its sampled config (shipped to the Ray workers)."""

    cfg: TuneConfig
    base_model: ModelConfig
    base_train: TrainConfig
    pairs_dir: Path
    trials_dir: Path
    spec: DegradationsConfig | None


def run_trial(config: dict[str, Any], job: TrialJob) -> None:
    """Ray Tune function trainable: train one configuration, reporting each validation.

    Checkpoints go to ``job.trials_dir/<trial id>``; a restarted trial resumes from them.
    """
    torch.set_num_threads(max(1, int(job.cfg.cpus_per_trial)))
    params = decode_params(job.cfg.space, config)
    model_cfg, train_cfg = trial_configs(params, job.base_model, job.base_train, job.cfg)
    ckpt_dir = job.trials_dir / ray_tune.get_context().get_trial_id()

    def report(step: int, metrics: dict[str, float]) -> None:
        ray_tune.report({"step": step, **{name: metrics[key] for name, key in REPORTED.items()}})

    train(model_cfg, train_cfg, job.pairs_dir, ckpt_dir, spec=job.spec, on_validate=report)


# --------------------------------------------------------------------------- search space


def param_space(space: Mapping[str, SearchDim]) -> dict[str, Any]:
    """Ray Tune distributions for ``tune.space``; ``randint`` includes both bounds."""
    out: dict[str, Any] = {}
    for key, dim in space.items():
        if dim.type == "choice":
            out[key] = ray_tune.choice([encode_value(dim, v) for v in dim.values or []])
        elif dim.type == "randint":
            out[key] = ray_tune.randint(int(dim.low or 0), int(dim.high or 0) + 1)
        elif dim.type == "loguniform":
            out[key] = ray_tune.loguniform(dim.low, dim.high)
        else:
            out[key] = ray_tune.uniform(dim.low, dim.high)
    return out


def make_searcher(cfg: TuneConfig, default: Mapping[str, Any]) -> SearchAlgorithm:
    """Seeded random search or Optuna TPE, trying ``default`` (encoded) first."""
    point = {key: encode_value(cfg.space[key], value) for key, value in default.items()}
    if cfg.searcher == "optuna":
        optuna = OptunaSearch(points_to_evaluate=[point], seed=cfg.seed)
        return ConcurrencyLimiter(optuna, max_concurrent=cfg.max_concurrent)
    return BasicVariantGenerator(
        points_to_evaluate=[point], max_concurrent=cfg.max_concurrent, random_state=cfg.seed
    )


class ReferenceASHA(ASHAScheduler):
    """ASHA on the reported ``step`` that never stops the first trial, the untuned default.

    The default thus reports at the full budget, where the best trial is compared with it;
    its scores still enter ASHA's rungs as a yardstick for the other trials.
    """

    def __init__(self, max_t: int, grace_period: int, reduction_factor: int) -> None:
        super().__init__(
            time_attr="step",
            max_t=max_t,
            grace_period=grace_period,
            reduction_factor=reduction_factor,
        )
        self.budget = max_t
        self.reference: str | None = None

    def on_trial_add(self, tune_controller: Any, trial: Trial) -> None:
        if self.reference is None:  # trials are added in creation order
            self.reference = trial.trial_id
        super().on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller: Any, trial: Trial, result: dict) -> str:
        action = super().on_trial_result(tune_controller, trial, result)
        if trial.trial_id == self.reference and result.get("step", 0) < self.budget:
            return TrialScheduler.CONTINUE
        return action


def make_scheduler(cfg: TuneConfig) -> TrialScheduler:
    """:class:`ReferenceASHA` (rungs at multiples of ``report_every``) or FIFO."""
    if cfg.scheduler == "fifo":
        return FIFOScheduler()
    return ReferenceASHA(
        max_t=cfg.steps_per_trial,
        grace_period=min(cfg.grace_period * cfg.report_every, cfg.steps_per_trial),
        reduction_factor=cfg.reduction_factor,
    )


# --------------------------------------------------------------------------- ray and storage


@contextmanager
def ray_environment() -> Iterator[None]:
    """Set :data:`RAY_ENV_DEFAULTS` where unset (offline Ray, prompt experiment saves)."""
    added = [name for name in RAY_ENV_DEFAULTS if name not in os.environ]
    for name in added:
        os.environ[name] = RAY_ENV_DEFAULTS[name]
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


@contextmanager
def ray_session(address: str | None) -> Iterator[None]:
    """Use the running Ray, else join ``RAY_ADDRESS``/``address``, else start a local one.

    A session started here is shut down (or disconnected from the cluster) on exit, also on an
    exception or a signal turned into one (``girml.process.sigterm_raises``). A local Ray also
    gets a watchdog (:func:`girml.process.start_reaper`): Ray's own fate sharing ends the
    raylet and workers with a driver killed by ``kill -9``, but its dashboard and runtime-env
    agents would live on.
    """
    if ray.is_initialized():
        yield
        return
    join = os.environ.get("RAY_ADDRESS") or address or None
    if join is not None and join.startswith("ray://"):
        raise ValueError(
            f"RAY_ADDRESS/tune.address {join}: Ray Client (ray://) needs ray[client], which the "
            "lock file does not install; use the cluster's GCS address (host:6379)"
        )
    reaper = None if join else start_reaper()
    sigterm = signal.getsignal(signal.SIGTERM)
    try:
        try:
            # a local Ray (no address) detects every core the process may use, cgroup limits
            # included
            ray.init(
                address=join,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.WARNING,
            )
        except ConnectionError as exc:
            if not join:
                raise
            raise ServiceUnreachable("Ray cluster", join, _join_failure(exc)) from exc
        _restore_sigterm_handler(sigterm)
        try:
            yield
        finally:
            ray.shutdown()
    finally:
        if reaper is not None:
            stop_reaper(reaper)


def _join_failure(exc: ConnectionError) -> str:
    """Why joining a cluster failed, with the authentication hint when it may be the cause."""
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "no answer"
    if os.environ.get("RAY_AUTH_MODE", "").lower() == "token":
        return reason
    return (
        f"{reason}; a cluster started with token authentication (the default of `ray start` "
        "since Ray 2.59) also needs RAY_AUTH_MODE=token and its token in RAY_AUTH_TOKEN or "
        "RAY_AUTH_TOKEN_PATH (`ray get-auth-token` on the head prints it)"
    )


def _restore_sigterm_handler(handler: Any) -> None:
    """Give SIGTERM back to the Python handler set before ``ray.init`` (``sigterm_raises``).

    ``ray.init`` replaces it (with a handler that exits with status 15 and, at C++ level, one
    that prints a stack dump); only a Python callable is put back, in the main thread.
    """
    if callable(handler) and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


def storage_uri(cfg: TuneConfig, work_dir: Path) -> str:
    """Where Ray keeps results: ``tune.storage_path`` (a URI, or a folder made absolute) or
    ``<work_dir>/ray_results``."""
    path = cfg.storage_path or str(work_dir / "ray_results")
    return path.rstrip("/") if "://" in path else str(Path(path).resolve())


def _read_text(uri: str) -> str | None:
    fs, path = pyarrow.fs.FileSystem.from_uri(uri)
    if fs.get_file_info(path).type != pyarrow.fs.FileType.File:
        return None
    with fs.open_input_stream(path) as fh:
        return fh.read().decode("utf-8")


def _write_text(uri: str, text: str) -> None:
    fs, path = pyarrow.fs.FileSystem.from_uri(uri)
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with fs.open_output_stream(path) as fh:
        fh.write(text.encode("utf-8"))


def _delete_dir(uri: str) -> None:
    fs, path = pyarrow.fs.FileSystem.from_uri(uri)
    if fs.get_file_info(path).type != pyarrow.fs.FileType.NotFound:
        fs.delete_dir(path)


def search_fingerprint(
    cfg: TuneConfig,
    base_model: ModelConfig,
    base_train: TrainConfig,
    pairs_dir: Path,
    spec: DegradationsConfig | None,
) -> str:
    """sha256 over what the search computes: the tune config (minus where and how fast it
    runs), the base configs (minus reporting cadence), the pairs manifests and the spec."""
    doc = {
        "tune": cfg.model_dump(mode="json", exclude=UNFINGERPRINTED_TUNE),
        "model": base_model.model_dump(mode="json"),
        "train": base_train.model_dump(mode="json", exclude=set(UNFINGERPRINTED)),
        "pairs": {
            split: hashlib.sha256((pairs_dir / split / "pairs.jsonl").read_bytes()).hexdigest()
            for split in ("train", "val")
        },
        "spec": None if spec is None else spec.model_dump(mode="json"),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _make_tuner(job: TrialJob, storage: str, fingerprint: str) -> tuple[ray_tune.Tuner, bool]:
    """Restore the stored experiment if its fingerprint matches, else start a fresh one."""
    cfg = job.cfg
    trainable = ray_tune.with_resources(
        ray_tune.with_parameters(run_trial, job=job),
        {"cpu": cfg.cpus_per_trial, "gpu": cfg.gpus_per_trial},
    )
    experiment = f"{storage}/{EXPERIMENT}"
    marker = f"{experiment}/{FINGERPRINT_FILE}"
    if ray_tune.Tuner.can_restore(experiment) and _read_text(marker) == fingerprint:
        restored = ray_tune.Tuner.restore(
            experiment, trainable=trainable, resume_unfinished=True, resume_errored=True
        )
        return restored, True
    _delete_dir(experiment)
    shutil.rmtree(job.trials_dir, ignore_errors=True)
    _write_text(marker, fingerprint)
    default = default_params(cfg.space, job.base_model, job.base_train)
    tuner = ray_tune.Tuner(
        trainable,
        param_space=param_space(cfg.space),
        tune_config=ray_tune.TuneConfig(
            metric=TUNE_METRIC,
            mode="max",
            search_alg=make_searcher(cfg, default),
            scheduler=make_scheduler(cfg),
            num_samples=cfg.num_samples + 1,  # + the default reference
            time_budget_s=cfg.time_budget_s,
        ),
        run_config=ray_tune.RunConfig(
            name=EXPERIMENT,
            storage_path=storage,
            failure_config=ray_tune.FailureConfig(max_failures=0),
            verbose=1,
        ),
    )
    return tuner, False


# --------------------------------------------------------------------------- results


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
        tags.update(tracking.provenance_tags(project_root, params_path))
    gain = None if result.default_score is None else result.best_score - result.default_score
    summary = {
        f"best.{METRIC}": result.best_score,
        **({} if result.default_score is None else {f"default.{METRIC}": result.default_score}),
        **({} if gain is None else {"best_gain_over_default": gain}),
        "configs_searched": float(result.configs_searched),
        "wall_seconds": result.wall_seconds,
    }
    with tracking.start_run(
        experiment, project_root, run_name="tune", tags=tags, log_system_metrics=False
    ) as parent:
        tracking.log_params_flat({"tune": cfg, "model": base_model, "train": base_train})
        tracking.log_metrics(result.steps_per_trial, summary)
        for row in result.trials:
            child_tags = {
                "trial_id": row["trial_id"],
                "status": row["status"],
                "default": str(row["default"]).lower(),
            }
            with tracking.start_run(
                experiment,
                project_root,
                run_name=f"trial-{row['trial_id']}",
                tags=child_tags,
                log_system_metrics=False,
                nested=True,
            ):
                tracking.log_params_flat({key: row[key] for key in cfg.space})
                for point in result.curves[row["trial_id"]]:
                    values = {k: v for k, v in point.items() if k != "step"}
                    tracking.log_metrics(int(point["step"]), values)
        return str(parent.info.run_id)


# --------------------------------------------------------------------------- entry point


def _trial_job(
    cfg: TuneConfig,
    base_model: ModelConfig,
    base_train: TrainConfig,
    pairs_dir: Path,
    work_dir: Path,
    spec: DegradationsConfig | None,
) -> TrialJob:
    """What every trial needs, after checking the space (the spec only with online degradations).

    Raises:
        ConfigError: a search space that cannot produce valid trials.
        ValueError: online degradations without ``spec``.
    """
    check_space(cfg, base_model, base_train)
    online = base_train.online_degradation_prob > 0 or "train.online_degradation_prob" in cfg.space
    if online and spec is None:
        raise ValueError("online degradations (train.online_degradation_prob) need the spec")
    return TrialJob(
        cfg=cfg,
        base_model=base_model,
        base_train=base_train,
        pairs_dir=pairs_dir,
        trials_dir=work_dir / "trials",
        spec=spec if online else None,
    )


def tune(
    cfg: TuneConfig,
    base_model: ModelConfig,
    base_train: TrainConfig,
    pairs_dir: Path,
    work_dir: Path,
    *,
    spec: DegradationsConfig | None = None,
    project_root: Path | None = None,
    params_path: Path | None = None,
    experiment: str = "gir",
) -> TuneResult:
    """Search ``cfg.space`` with Ray Tune; every trial runs the ``train`` stage's loop.

    Args:
        cfg: the ``tune`` section (space, searcher, scheduler, budgets, resources, Ray).
        base_model: the ``model`` section the trials override.
        base_train: the ``train`` section the trials override.
        pairs_dir: holds ``train/`` and ``val/`` pairs (synthesize layout).
        work_dir: the search's scratch folder: trial checkpoints (``trials/``) and, unless
            ``cfg.storage_path`` is set, Ray's results (``ray_results/``).
        spec: the degradation spec, needed when trials use online degradations.
        project_root: where the MLflow store lives; None disables tracking.
        params_path: the params file, for the parent run's provenance tags.
        experiment: MLflow experiment name.

    Returns:
        The :class:`TuneResult`; write it with ``write_best`` / ``write_trials_csv``.

    Raises:
        ConfigError: a search space that cannot produce valid trials.
        ValueError: online degradations without ``spec``.
        SearchInterrupted: the search stopped before every trial ended (trial checkpoints are
            kept for the next call).
        RuntimeError: no trial reported a score.
    """
    work_dir = Path(work_dir).resolve()
    job = _trial_job(cfg, base_model, base_train, Path(pairs_dir).resolve(), work_dir, spec)
    fingerprint = search_fingerprint(cfg, base_model, base_train, job.pairs_dir, job.spec)
    start = time.perf_counter()
    with ray_environment(), ray_session(cfg.address):
        tuner, resumed = _make_tuner(job, storage_uri(cfg, work_dir), fingerprint)
        grid = tuner.fit()
        wall = time.perf_counter() - start
        result = collect_results(grid.experiment_path, grid.filesystem, cfg, resumed, wall)
    # every trial has ended: their checkpoints can no longer be resumed from
    shutil.rmtree(job.trials_dir, ignore_errors=True)
    if project_root is not None:
        log_search(result, cfg, base_model, base_train, project_root, params_path, experiment)
    return result
