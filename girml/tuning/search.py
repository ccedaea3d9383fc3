"""Hyperparameter search on Ray Tune (DVC stage ``tune``): :func:`tune`, the one entry point.

Every trial runs the ``train`` stage's training loop on the trial's values
(:mod:`girml.tuning.trial`); the untuned default is evaluated first as a reference trial
(``points_to_evaluate``), on top of ``num_samples`` searched configurations
(:mod:`girml.tuning.searchers`). The search runs on a joined or local Ray
(:mod:`girml.tuning.ray_session`), in an experiment that resumes when its fingerprint matches
(:mod:`girml.tuning.experiment`); its trials are then read into a
:class:`~girml.tuning.results.TuneResult` (:mod:`girml.tuning.outcome`). :func:`tune` logs
nothing: the ``tune`` stage logs the result to MLflow (:func:`girml.tuning.outcome.log_search`).

Resuming: when an interrupted experiment with the same fingerprint can be restored, :func:`tune`
continues it: finished trials are kept, unfinished ones restart and resume from their training
checkpoints in ``<work_dir>/trials/<trial id>`` (written every ``report_every`` steps; removed
once the search has ended). Ray saves its experiment state at most every
``TUNE_GLOBAL_CHECKPOINT_S`` seconds (2 unless set), so a trial that finished just before a
kill may re-validate once on resume.

Searches are reproducible given ``tune.seed`` as far as Ray allows: the sampled configurations
are, but with parallel trials the order in which results arrive (and hence ASHA's decisions and
Optuna's later suggestions) depends on timing.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import torch

from girml.config import DegradationsConfig, ModelConfig, TrainConfig, TuneConfig
from girml.tuning.experiment import make_tuner, search_fingerprint, storage_uri
from girml.tuning.outcome import collect_results
from girml.tuning.ray_session import ray_environment, ray_session
from girml.tuning.results import TuneResult
from girml.tuning.space import check_space
from girml.tuning.trial import TrialJob


def _trial_job(
    cfg: TuneConfig,
    base_model: ModelConfig,
    base_train: TrainConfig,
    pairs_dir: Path,
    work_dir: Path,
    spec: DegradationsConfig | None,
    init: dict[str, torch.Tensor] | None = None,
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
        init=init,
    )


def tune(
    cfg: TuneConfig,
    base_model: ModelConfig,
    base_train: TrainConfig,
    pairs_dir: Path,
    work_dir: Path,
    *,
    spec: DegradationsConfig | None = None,
    init: dict[str, torch.Tensor] | None = None,
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
        init: the weights of ``base_train.init_from``, loaded by the caller
            (:func:`girml.artifacts.loading.source_weights`); every trial starts from them.

    Returns:
        The :class:`TuneResult`; write it with ``write_best`` / ``write_trials_csv`` and log it
        with :func:`~girml.tuning.outcome.log_search`.

    Raises:
        ConfigError: a search space that cannot produce valid trials.
        ValueError: online degradations without ``spec``.
        SearchInterrupted: the search stopped before every trial ended (trial checkpoints are
            kept for the next call).
        RuntimeError: no trial reported a score.
    """
    work_dir = Path(work_dir).resolve()
    job = _trial_job(cfg, base_model, base_train, Path(pairs_dir).resolve(), work_dir, spec, init)
    fingerprint = search_fingerprint(cfg, base_model, base_train, job.pairs_dir, job.spec)
    start = time.perf_counter()
    with ray_environment(), ray_session(cfg.address):
        tuner, resumed = make_tuner(job, storage_uri(cfg, work_dir), fingerprint)
        grid = tuner.fit()
        wall = time.perf_counter() - start
        result = collect_results(grid.experiment_path, grid.filesystem, cfg, resumed, wall)
    # every trial has ended: their checkpoints can no longer be resumed from
    shutil.rmtree(job.trials_dir, ignore_errors=True)
    return result
