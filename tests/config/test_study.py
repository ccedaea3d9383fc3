"""The ``study`` section (girml/config/study.py); the approach-name and routing rules are also
exercised in tests/evaluation/test_approaches.py."""

from __future__ import annotations

import pytest

from girml.config import ApproachConfig, ConfigError, StudyConfig, parse_section


def test_an_empty_study_is_the_quick_profiles() -> None:
    cfg = parse_section({}, "study", StudyConfig)
    assert cfg.approaches == {} and cfg.reference == "model" and cfg.n_boot == 2000


def test_approaches_parse_with_their_model_overrides() -> None:
    raw = {
        "approaches": {
            "prompt": {"kind": "unified", "model": {"type": "prompt_nafnet"}},
            "experts": {"kind": "specialists"},
            "routed": {"kind": "routed", "specialists": "experts"},
            "shipped": {"kind": "release"},
        }
    }
    cfg = parse_section(raw, "study", StudyConfig)
    assert cfg.approaches["prompt"].model == {"type": "prompt_nafnet"}
    assert [a.kind for a in cfg.approaches.values()] == [
        "unified",
        "specialists",
        "routed",
        "release",
    ]


def test_a_routed_approach_cannot_route_to_another_routed_one() -> None:
    raw = {
        "approaches": {
            "experts": {"kind": "specialists"},
            "a": {"kind": "routed", "specialists": "experts"},
            "b": {"kind": "routed", "specialists": "a"},
        }
    }
    with pytest.raises(ConfigError, match=r"study\.approaches: .*'b' routes to 'a'"):
        parse_section(raw, "study", StudyConfig)
    with pytest.raises(ValueError, match="kind 'routed' trains no restorer"):
        ApproachConfig(kind="routed", model={"width": 8})


def test_bootstrap_resamples_are_bounded() -> None:
    with pytest.raises(ConfigError, match=r"study\.n_boot: .*greater than or equal to 100"):
        parse_section({"n_boot": 10}, "study", StudyConfig)
