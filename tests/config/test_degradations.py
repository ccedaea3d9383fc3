"""The ``degradations`` section (girml/config/degradations.py): families, sampled parameters
and what names them, checked against each other."""

from __future__ import annotations

import pytest

from girml.config import (
    CLEAN_FAMILY,
    ConfigError,
    DegradationsConfig,
    ParamChoice,
    ParamRange,
    parse_section,
)
from tests.factories import tiny_params


def test_degradation_spec_cross_checks() -> None:
    raw = tiny_params()["degradations"]
    raw["held_out"]["families"] = ["rain"]
    with pytest.raises(ConfigError, match="unknown families"):
        parse_section(raw, "degradations", DegradationsConfig)
    raw = tiny_params()["degradations"]
    raw["families"]["noise"]["ops"]["gaussian_noise"]["params"]["sigma"]["id"] = [50, 15]
    with pytest.raises(ConfigError, match=r"degradations\.families\.noise.*low <= high"):
        parse_section(raw, "degradations", DegradationsConfig)


def test_parameters_parse_by_their_shape() -> None:
    raw = tiny_params()["degradations"]
    cfg = parse_section(raw, "degradations", DegradationsConfig)
    sigma = cfg.families["noise"].ops["gaussian_noise"].params["sigma"]
    assert isinstance(sigma, ParamRange)
    choice = ParamChoice.model_validate({"choices": ["a", 2], "ood": [3]})
    assert choice.choices == ["a", 2]
    with pytest.raises(ValueError, match="log ranges must be positive, got id="):
        ParamRange.model_validate({"id": [0, 5], "log": True})
    with pytest.raises(ValueError, match="ood range must be"):
        ParamRange.model_validate({"id": [1, 5], "ood": [9, 6]})


def test_the_clean_family_name_is_reserved_and_something_must_be_left_to_train() -> None:
    raw = tiny_params()["degradations"]
    raw["families"][CLEAN_FAMILY] = raw["families"]["noise"]
    with pytest.raises(ConfigError, match=f"family name '{CLEAN_FAMILY}' is reserved"):
        parse_section(raw, "degradations", DegradationsConfig)
    raw = tiny_params()["degradations"]
    raw["held_out"] = {"families": sorted(raw["families"])}
    with pytest.raises(ConfigError, match="every family is held out"):
        parse_section(raw, "degradations", DegradationsConfig)
    raw = tiny_params()["degradations"]
    raw["train_composers"] = {"single": 0.0, "mixed": 0.0}
    with pytest.raises(ConfigError, match="train_composers needs at least one positive weight"):
        parse_section(raw, "degradations", DegradationsConfig)
