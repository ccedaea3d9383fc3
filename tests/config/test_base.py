"""The base of every config section (girml/config/base.py): frozen models that refuse unknown
keys, and the strict YAML reader that refuses a key given twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from girml.config import (
    CollectConfig,
    ConfigError,
    Frozen,
    SynthesizeConfig,
    load_yaml,
    parse_section,
)
from tests.factories import tiny_params

ROOT = Path(__file__).resolve().parents[2]


def test_config_objects_are_frozen() -> None:
    cfg = parse_section(tiny_params()["synthesize"], "synthesize", SynthesizeConfig)
    with pytest.raises(ValueError):
        cfg.seed = 3  # type: ignore[misc]
    src = parse_section({"sources": [{"type": "folder", "path": "x"}]}, "collect", CollectConfig)
    assert src.sources[0].type == "folder"


def test_a_duplicate_key_names_the_key_and_both_lines(tmp_path: Path) -> None:
    """Before: ``batch_size: 8`` then ``batch_size: 16`` was accepted, and 16 was used."""
    from typer.testing import CliRunner

    from girml.cli import app
    from girml.config import read_params
    from girml.tuning.results import load_tuned_overrides

    params = tmp_path / "params.yaml"
    params.write_text("train:\n  batch_size: 8\n  steps: 10\n  batch_size: 16\n")
    expected = f"{params}: duplicate key 'batch_size' on lines 2 and 4 (keep one)"
    with pytest.raises(ConfigError) as info:
        read_params(params)
    assert str(info.value) == expected
    flow = tmp_path / "flow.yaml"  # flow style, on one line: same line twice
    flow.write_text("collect: {min_size: 8, min_size: 9}\n")
    with pytest.raises(ConfigError, match="duplicate key 'min_size' on lines 1 and 1"):
        read_params(flow)
    merged = tmp_path / "merged.yaml"  # overriding a merged key is what `<<` is for
    merged.write_text("model:\n  <<: {width: 8}\n  width: 16\n")
    assert read_params(merged)["model"] == {"width": 16}

    # a stage verb and `girml profile` stop with one line and exit code 2
    result = CliRunner().invoke(app, ["validate", "--params", str(params)])
    assert result.exit_code == 2 and result.output.strip() == f"error: {expected}"
    profile = tmp_path / "profile.yaml"
    profile.write_text("model:\n  width: 8\nmodel:\n  width: 16\n")
    args = ["profile", str(profile), "--base", str(ROOT / "params.yaml")]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "out.yaml")])
    assert result.exit_code == 2, result.output
    assert f"{profile}: duplicate key 'model' on lines 1 and 3" in result.output
    assert not (tmp_path / "out.yaml").exists()
    best = tmp_path / "best.yaml"  # tune/best.yaml too
    best.write_text("params:\n  train: {lr: 0.001}\n  train: {lr: 0.1}\n")
    with pytest.raises(ConfigError, match="duplicate key 'train' on lines 2 and 3"):
        load_tuned_overrides(best)


def test_load_yaml_reads_what_safe_load_reads() -> None:
    text = "a: 1\nb: [x, {c: null}]\nd: no\n"
    assert load_yaml(text, "t.yaml") == {"a": 1, "b": ["x", {"c": None}], "d": False}
    assert load_yaml("", "t.yaml") is None
    with pytest.raises(ConfigError, match=r"^t\.yaml: not valid YAML"):
        load_yaml("a: [1, 2\n", "t.yaml")


def test_a_frozen_model_refuses_unknown_keys() -> None:
    class Tiny(Frozen):
        x: int = 1

    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        Tiny(x=2, y=3)
    assert Tiny().model_config["frozen"] is True
