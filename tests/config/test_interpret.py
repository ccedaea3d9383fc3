"""The ``interpret`` section (girml/config/interpret.py)."""

from __future__ import annotations

import pytest

from girml.config import ConfigError, InterpretConfig, parse_section


def test_defaults_and_bounds() -> None:
    cfg = InterpretConfig()
    assert cfg.layer == "bottleneck" and cfg.images_per_group == 8 and cfg.seed == 0
    for key, bad in (("tsne_perplexity", 1), ("images_per_group", 1), ("lam_window", 2)):
        with pytest.raises(ConfigError, match=rf"interpret\.{key}: "):
            parse_section({key: bad}, "interpret", InterpretConfig)
    with pytest.raises(ConfigError, match=r"interpret\.sensitivity_extend: .*got 0\.5"):
        parse_section({"sensitivity_extend": 0.5}, "interpret", InterpretConfig)
