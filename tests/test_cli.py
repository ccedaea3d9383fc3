"""The stage verbs: the params keys each one reads are the ones dvc.yaml declares."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest
import yaml

from girml import cli
from girml.stages.contract import STAGE_PARAMS, StageParams

ROOT = Path(__file__).resolve().parents[1]


def _dvc_stages() -> dict[str, dict]:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def test_dvc_yaml_declares_exactly_the_params_each_verb_reads() -> None:
    stages = _dvc_stages()
    for name, stage in stages.items():
        verb = stage["cmd"].split()[1]  # "girml VERB --params params.yaml"
        assert sorted(stage.get("params", [])) == sorted(STAGE_PARAMS[verb]), name
    assert {s["cmd"].split()[1] for s in stages.values()} == set(STAGE_PARAMS)


def test_stage_verbs_read_params_only_through_stage_params() -> None:
    for verb in STAGE_PARAMS:
        source = inspect.getsource(importlib.import_module(f"girml.stages.{verb}"))
        for direct in ("load_section(", "read_params(", "yaml.safe_load("):
            assert direct not in source, f"girml {verb} reads params with {direct}...)"
        assert f'StageParams(params, "{verb}")' in source, verb
        # the verb itself only runs its stage module
        verb_source = inspect.getsource(getattr(cli, verb))
        assert f"from girml.stages import {verb} as this" in verb_source, verb
        assert "StageParams" not in verb_source and "load_section" not in verb_source, verb


def test_stage_params_refuses_what_the_stage_does_not_declare(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text((ROOT / "params.yaml").read_text())
    validate = StageParams(params, "validate")
    assert (
        validate.value("collect.min_size")
        == yaml.safe_load(params.read_text())["collect"]["min_size"]
    )
    assert validate.section("validate").default_psnr_band
    with pytest.raises(KeyError, match=r"validate reads collect\.max_pixels"):
        validate.value("collect.max_pixels")
    with pytest.raises(KeyError, match="validate reads model"):
        validate.section("model")
    with pytest.raises(KeyError, match="validate reads collect"):
        validate.section("collect")  # one key of the section is declared, not all of it
    train = StageParams(params, "train")
    assert train.raw("train")["steps"] == train.section("train").steps
