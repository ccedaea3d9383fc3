"""Ray Tune's side of the search space: the distributions of ``tune.space``, the seeded searcher
that tries the untuned default first, and the ASHA scheduler that never stops that reference
trial early."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ray import tune as ray_tune
from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler
from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter, SearchAlgorithm
from ray.tune.search.optuna import OptunaSearch

from girml.config import SearchDim, TuneConfig
from girml.tuning.space import encode_value


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
