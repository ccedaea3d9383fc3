"""The ``evaluate`` section (girml/config/evaluate.py): the benchmark's settings, the promotion
rules and restore's defaults (outside methods: tests/evaluation/test_methods.py)."""

from __future__ import annotations

import pytest

from girml.config import (
    RESERVED_METHODS,
    RESTORE_OVERLAP,
    RESTORE_TILE,
    ConfigError,
    EvaluateConfig,
    PromotionConfig,
    StudyConfig,
    parse_section,
)


def test_the_evaluate_stages_own_row_names_are_free_for_no_method_and_no_approach() -> None:
    assert {"model", "champion"} == RESERVED_METHODS  # harness.MODEL_METHOD, CHAMPION_METHOD
    for name in RESERVED_METHODS:
        method = {"name": name, "python": "m:f"}
        with pytest.raises(ConfigError, match=f"method name '{name}' is taken"):
            parse_section({"methods": [method]}, "evaluate", EvaluateConfig)
        with pytest.raises(ConfigError, match=f"approach name '{name}' is taken"):
            parse_section({"approaches": {name: {"kind": "release"}}}, "study", StudyConfig)


def test_self_ensemble_and_tiles_take_only_what_restore_can_do() -> None:
    assert EvaluateConfig().self_ensemble == 8 and EvaluateConfig().tile is None
    with pytest.raises(ConfigError, match=r"evaluate\.self_ensemble: .*got 3"):
        parse_section({"self_ensemble": 3}, "evaluate", EvaluateConfig)
    with pytest.raises(ConfigError, match=r"evaluate\.tile: .*greater than or equal to 16"):
        parse_section({"tile": 8}, "evaluate", EvaluateConfig)
    assert 0 < RESTORE_OVERLAP < RESTORE_TILE  # restore's tiles overlap, never cover


def test_promotion_bounds_name_the_nested_key() -> None:
    rules = PromotionConfig()
    assert rules.min_gir_gain == 0.05 and rules.max_harm_rate_increase == 0.05
    with pytest.raises(ConfigError, match=r"evaluate\.promotion\.max_harm_rate_increase: .*1"):
        parse_section({"promotion": {"max_harm_rate_increase": 2}}, "evaluate", EvaluateConfig)
    with pytest.raises(ConfigError, match=r"evaluate\.promotion\.min_gir_gain: .*got -0\.1"):
        parse_section({"promotion": {"min_gir_gain": -0.1}}, "evaluate", EvaluateConfig)
