"""The search space and the trials' configs (girml/tuning/space.py; no Ray)."""

from __future__ import annotations

import numpy as np
import pytest

from girml.config import ConfigError, SearchDim
from girml.tuning.space import (
    check_space,
    decode_params,
    default_params,
    encode_value,
    nest,
    trial_configs,
)
from tests.tuning.common import BASE, CFG, MODEL, SPACE, tune_cfg


def test_trial_configs_apply_overrides_and_the_trial_budget() -> None:
    model, train = trial_configs({"train.lr": 2e-3, "model.enc_blocks": [1, 1]}, MODEL, BASE, CFG)
    assert model.enc_blocks == [1, 1] and model.width == MODEL.width
    assert train.lr == 2e-3 and train.batch_size == BASE.batch_size
    assert (train.steps, train.val_every, train.ckpt_every) == (6, 3, 3)
    assert train.warmup_steps == 1  # 10 warm-up steps of 60, scaled to 6 steps
    assert train.num_workers == 0
    _, searched = trial_configs({"train.warmup_steps": 4}, MODEL, BASE, CFG)
    assert searched.warmup_steps == 4
    with pytest.raises(ConfigError, match=r"train\.lr"):
        trial_configs({"train.lr": -1.0}, MODEL, BASE, CFG)
    with pytest.raises(ValueError, match=r"got 'optim\.lr'"):
        nest({"optim.lr": 1.0})


def test_nest_and_default_params() -> None:
    assert nest({"train.lr": 1.0, "model.width": 8}) == {
        "model": {"width": 8},
        "train": {"lr": 1.0},
    }
    space = {k: SearchDim.model_validate(v) for k, v in SPACE.items()}
    assert default_params(space, MODEL, BASE) == {"train.lr": 1e-3, "model.enc_blocks": [1]}


def test_choices_of_lists_are_json_for_the_searcher_and_decoded_back() -> None:
    space = {
        "model.enc_blocks": SearchDim(type="choice", values=[[1], [1, 1]]),
        "model.type": SearchDim(type="choice", values=["nafnet", "prompt_nafnet"]),
        "train.lr": SearchDim(type="loguniform", low=1e-4, high=1e-2),
    }
    assert encode_value(space["model.enc_blocks"], [1, 1]) == "[1, 1]"
    assert encode_value(space["model.type"], "nafnet") == "nafnet"
    config = {"model.enc_blocks": "[1, 1]", "model.type": "nafnet", "train.lr": np.float64(0.01)}
    decoded = decode_params(space, {**config, "unrelated": 1})
    assert decoded == {"model.enc_blocks": [1, 1], "model.type": "nafnet", "train.lr": 0.01}
    assert type(decoded["train.lr"]) is float
    with pytest.raises(ValueError, match=r"lacks the searched keys \['train.lr'\]"):
        decode_params(space, {"model.enc_blocks": "[1]", "model.type": "nafnet"})


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"train.steps": {"type": "choice", "values": [5]}}, "train.steps: set by the tuner"),
        ({"model.width": {"type": "uniform", "low": 4, "high": 8}}, "integer; use randint"),
        ({"model.width": {"type": "randint", "low": 4.5, "high": 8}}, "integer bounds"),
        ({"train.patch_size": {"type": "choice", "values": [64, 4]}}, "value 4 is invalid"),
        ({"model.type": {"type": "choice", "values": ["nafnet", "nope"]}}, "value 'nope'"),
        ({"train.lr": {"type": "uniform", "low": -1.0, "high": 1.0}}, "value -1.0 is invalid"),
    ],
)
def test_check_space_rejects_spaces_that_cannot_run(space: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check_space(tune_cfg(space=space), MODEL, BASE)


def test_check_space_budget_and_optuna_reference() -> None:
    check_space(CFG, MODEL, BASE)
    check_space(tune_cfg(searcher="optuna"), MODEL, BASE)
    with pytest.raises(ConfigError, match=r"report_every must be <= tune\.steps_per_trial"):
        check_space(tune_cfg(report_every=7), MODEL, BASE)
    widths = {"model.width": {"type": "choice", "values": [8, 12]}}
    check_space(tune_cfg(space=widths), MODEL, BASE)  # random search takes any default
    with pytest.raises(ConfigError, match=r"base value 4 .* one of the choices \[8, 12\]"):
        check_space(tune_cfg(space=widths, searcher="optuna"), MODEL, BASE)


# --------------------------------------------------------------------------- outputs (no Ray)
