"""The flow's ``-S``-style params overrides (pipelines/overrides.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from girml.config import ConfigError
from pipelines.overrides import apply_overrides, parse_override
from tests.pipelines.project import PARAMS

ROOT = Path(__file__).resolve().parents[2]


def test_parse_override() -> None:
    assert parse_override("train.steps=200") == (["train", "steps"], 200)
    assert parse_override("collect.split.val=0.2") == (["collect", "split", "val"], 0.2)
    assert parse_override("model.enc_blocks=[1, 2]") == (["model", "enc_blocks"], [1, 2])
    for bad in ("steps=200", "train.steps", "=1", "train.steps=[1,"):
        with pytest.raises(ConfigError, match="override"):
            parse_override(bad)


def test_apply_overrides_keeps_comments_and_validates(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(PARAMS)
    new = apply_overrides(params, ["synthesize.train_pairs=9", "train.steps=3"])
    assert new["synthesize"]["train_pairs"] == 9 and new["train"] == {"steps": 3}
    text = params.read_text()
    assert "# pairs written by the fetch stage" in text and "train_pairs: 9" in text

    before = params.read_text()
    with pytest.raises(ConfigError, match=r"synthesize\.train_pairz"):
        apply_overrides(params, ["synthesize.train_pairz=3"])
    with pytest.raises(ConfigError, match=r"synthesize\.train_pairs"):
        apply_overrides(params, ["synthesize.train_pairs=-1"])
    with pytest.raises(ConfigError, match="unknown section 'bogus'"):
        apply_overrides(params, ["bogus.x=1"])
    with pytest.raises(ConfigError, match=r"synthesize\.train_pairs is not a mapping"):
        apply_overrides(params, ["synthesize.train_pairs.x=1"])
    assert params.read_text() == before


def test_overrides_on_the_real_params_change_only_their_lines(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    original = (ROOT / "params.yaml").read_text()
    params.write_text(original)
    new = apply_overrides(params, ["train.steps=7", 'train.mixed_precision="no"'])
    assert new["train"]["steps"] == 7 and new["train"]["mixed_precision"] == "no"  # not False
    changed = [
        (a, b) for a, b in zip(original.splitlines(), params.read_text().splitlines(), strict=True)
        if a != b
    ]  # fmt: skip
    assert [b.split("#")[0].strip() for _, b in changed] == ["steps: 7"]
