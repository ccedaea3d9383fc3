"""The ``model`` section (girml/config/model.py): an architecture and sizes bounded before
anything is allocated (the model-folder side: tests/models/test_shapes.py)."""

from __future__ import annotations

import pytest

from girml.config import ConfigError, ModelConfig, parse_section
from girml.config.model import MAX_BLOCKS, MAX_LEVELS


def test_defaults_are_a_small_three_level_nafnet() -> None:
    cfg = ModelConfig()
    assert cfg.type == "nafnet" and cfg.width == 16
    assert cfg.enc_blocks == [1, 1, 2] and cfg.dec_blocks is None and cfg.sca_max


def test_decoder_blocks_need_one_entry_per_level() -> None:
    ok = parse_section({"enc_blocks": [1, 2], "dec_blocks": [1, 1]}, "model", ModelConfig)
    assert ok.dec_blocks == [1, 1]
    with pytest.raises(ConfigError, match=r"dec_blocks needs one entry per level \(2\), got \[1\]"):
        parse_section({"enc_blocks": [1, 2], "dec_blocks": [1]}, "model", ModelConfig)


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"enc_blocks": [1] * (MAX_LEVELS + 1)}, "model.enc_blocks"),
        ({"enc_blocks": []}, "model.enc_blocks"),
        ({"enc_blocks": [1, MAX_BLOCKS + 1]}, "model.enc_blocks[1]"),
        ({"middle_blocks": -1}, "model.middle_blocks"),
        ({"width": 3}, "model.width"),
    ],
)
def test_sizes_out_of_bounds_name_the_key(raw: dict, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_section(raw, "model", ModelConfig)
    assert f"\n  {key}: " in str(info.value)
