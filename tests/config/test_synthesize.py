"""The ``synthesize`` and ``validate`` sections (girml/config/synthesize.py)."""

from __future__ import annotations

import pytest

from girml.config import (
    ConfigError,
    SynthesizeConfig,
    ValidateConfig,
    held_categories,
    parse_section,
)


@pytest.mark.parametrize(
    ("value", "held"),
    [(None, []), ("scientific", ["scientific"]), (["a", "b"], ["a", "b"]), ([], [])],
)
def test_held_out_categories_read_as_a_list(value: object, held: list[str]) -> None:
    assert held_categories(value) == held  # type: ignore[arg-type]
    cfg = parse_section({"unseen_content_category": value}, "synthesize", SynthesizeConfig)
    assert cfg.held_categories == held


def test_pair_sizes_and_counts_are_bounded() -> None:
    with pytest.raises(ConfigError, match=r"synthesize\.patch_size: .*greater than or equal"):
        parse_section({"patch_size": 8}, "synthesize", SynthesizeConfig)
    with pytest.raises(ConfigError, match=r"synthesize\.whole_photos: .*got -1"):
        parse_section({"whole_photos": -1}, "synthesize", SynthesizeConfig)
    assert SynthesizeConfig().whole_photos is None  # None: every test photo


def test_validate_bands_default_to_the_low_light_exception() -> None:
    cfg = ValidateConfig()
    assert cfg.psnr_band == {"lowlight": (0.5, 50.0)} and cfg.default_psnr_band == (2.0, 80.0)
    parsed = parse_section({"psnr_band": {"noise": [1, 40]}}, "validate", ValidateConfig)
    assert parsed.psnr_band == {"noise": (1.0, 40.0)}
    with pytest.raises(ConfigError, match=r"validate\.default_psnr_band"):
        parse_section({"default_psnr_band": [1, 2, 3]}, "validate", ValidateConfig)
