"""Ray Tune's searchers and scheduler (girml/tuning/searchers.py)."""

from __future__ import annotations

import pytest

from girml.config import SearchDim
from girml.tuning.space import default_params
from tests.tuning.common import BASE, MODEL, SPACE, tune_cfg


@pytest.mark.slow
def test_optuna_searcher_tries_the_default_first_and_is_seeded() -> None:
    from girml.tuning.searchers import make_searcher, param_space  # imports Ray (seconds)

    cfg = tune_cfg(searcher="optuna")
    space = {k: SearchDim.model_validate(v) for k, v in SPACE.items()}

    def suggestions() -> list[dict]:
        searcher = make_searcher(cfg, default_params(space, MODEL, BASE))
        searcher.set_search_properties("val_psnr", "max", param_space(space))
        return [searcher.suggest(f"t{i}") for i in range(2)]

    first = suggestions()
    assert first[0] == {"train.lr": 1e-3, "model.enc_blocks": "[1]"}
    assert first[1] != first[0] and first == suggestions()


@pytest.mark.slow
def test_asha_never_stops_the_default_reference_early() -> None:
    from ray.tune.experiment import Trial  # imports Ray (seconds)
    from ray.tune.schedulers import TrialScheduler

    from girml.tuning.searchers import make_scheduler

    scheduler = make_scheduler(tune_cfg(scheduler="asha", steps_per_trial=12, report_every=3))
    assert scheduler.set_search_properties("val_psnr", "max")
    default, good, bad = (Trial("run_trial", stub=True) for _ in range(3))
    for trial in (default, good, bad):
        scheduler.on_trial_add(None, trial)

    def decide(trial: Trial, step: int, score: float) -> str:
        return scheduler.on_trial_result(None, trial, {"step": step, "val_psnr": score})

    assert decide(good, 3, 30.0) == TrialScheduler.CONTINUE
    assert decide(default, 3, 10.0) == TrialScheduler.CONTINUE  # below the rung's cutoff
    assert decide(bad, 3, 9.0) == TrialScheduler.STOP
    assert decide(default, 12, 10.0) == TrialScheduler.STOP  # the budget is spent
