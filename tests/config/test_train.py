"""The ``train`` and ``tune`` sections (girml/config/train.py)."""

from __future__ import annotations

import pytest

from girml.config import ConfigError, SearchDim, TrainConfig, TuneConfig, parse_section


def test_train_values_are_bounded_and_name_their_key() -> None:
    with pytest.raises(ConfigError, match=r"train\.ema_decay: .*less than 1"):
        parse_section({"ema_decay": 1.0}, "train", TrainConfig)
    with pytest.raises(ConfigError, match=r"train\.loss: .*'l1', 'charbonnier', 'l2' or 'psnr'"):
        parse_section({"loss": "ssim"}, "train", TrainConfig)
    cfg = parse_section({"init_from": "release", "mixed_precision": "bf16"}, "train", TrainConfig)
    assert cfg.init_from == "release" and cfg.mixed_precision == "bf16"


@pytest.mark.parametrize(
    ("dim", "message"),
    [
        ({"type": "choice"}, "choice needs a non-empty `values` list"),
        ({"type": "uniform", "low": 1, "high": 1}, "uniform needs low < high"),
        ({"type": "randint", "low": 4}, "randint needs low < high, got low=4.0 high=None"),
        ({"type": "loguniform", "low": 0, "high": 1}, "loguniform needs low > 0, got 0"),
    ],
)
def test_a_search_dimension_needs_its_shape(dim: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SearchDim.model_validate(dim)


def test_tune_space_keys_must_name_train_or_model_fields() -> None:
    space = {"train.lr": {"type": "loguniform", "low": 1e-4, "high": 1e-2}}
    cfg = parse_section(
        {"space": {**space, "model.width": {"type": "choice", "values": [8]}}}, "tune", TuneConfig
    )
    assert set(cfg.space) == {"train.lr", "model.width"} and cfg.searcher == "random"
    for key in ("train.learning_rate", "data.lr", "lr"):
        with pytest.raises(ConfigError, match=f"space key '{key}' must name a field"):
            parse_section({"space": {key: space["train.lr"]}}, "tune", TuneConfig)
    with pytest.raises(ConfigError, match=r"tune\.space: .*at least 1 item"):
        parse_section({"space": {}}, "tune", TuneConfig)
