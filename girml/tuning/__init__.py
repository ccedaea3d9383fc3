"""Hyperparameter search (DVC stage ``tune``): Ray Tune over the ``train`` stage's loop.

This package exports the Ray-free parts, which the ``train`` stage uses to apply
``tune/best.yaml``. The search itself is :func:`girml.tuning.search.tune`; importing that
module imports Ray (seconds), so only the ``tune`` stage does.
"""

from girml.tuning.results import (
    METRIC,
    TuneResult,
    load_tuned_overrides,
    tuned_configs,
    write_best,
    write_trials_csv,
)
from girml.tuning.space import (
    check_space,
    decode_params,
    default_params,
    encode_value,
    nest,
    trial_configs,
)

__all__ = [
    "METRIC",
    "TuneResult",
    "check_space",
    "decode_params",
    "default_params",
    "encode_value",
    "load_tuned_overrides",
    "nest",
    "trial_configs",
    "tuned_configs",
    "write_best",
    "write_trials_csv",
]
