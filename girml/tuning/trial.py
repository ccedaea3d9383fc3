"""One trial of the search, as the Ray workers run it: the job shipped to them and the
trainable that runs the ``train`` stage's loop on the trial's configuration, reporting each
validation to Tune.

Each trial runs :func:`girml.training.loop.train` on the base ``model``/``train`` configs with the
trial's values laid over them (:func:`girml.tuning.space.trial_configs`) and a budget of
``tune.steps_per_trial`` steps. It validates every ``tune.report_every`` steps and reports
``val_psnr`` (= ``val.psnr_y_model``, maximised) and ``step`` to Tune, which ASHA uses as its
time axis. Checkpoints go to ``<work_dir>/trials/<trial id>``, so a restarted trial resumes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from ray import tune as ray_tune

from girml.config import DegradationsConfig, ModelConfig, TrainConfig, TuneConfig
from girml.training.loop import train
from girml.tuning.results import METRIC
from girml.tuning.space import decode_params, trial_configs

TUNE_METRIC = "val_psnr"  # Tune's name for METRIC (val.psnr_y_model)
# reported to Tune at each validation -> the name used in TuneResult rows and curves
REPORTED = {
    TUNE_METRIC: METRIC,
    "val_psnr_gain": "val.psnr_gain",
    "val_psnr_input": "val.psnr_y_input",
}


@dataclass(frozen=True)
class TrialJob:
    """Everything a trial needs besides its sampled config (shipped to the Ray workers)."""

    cfg: TuneConfig
    base_model: ModelConfig
    base_train: TrainConfig
    pairs_dir: Path
    trials_dir: Path
    spec: DegradationsConfig | None
    init: dict[str, torch.Tensor] | None = None  # the weights of train.init_from


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

    train(
        model_cfg,
        train_cfg,
        job.pairs_dir,
        ckpt_dir,
        spec=job.spec,
        on_validate=report,
        init=job.init,
    )
