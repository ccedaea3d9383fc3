"""dvc.yaml against the stage modules: each stage declares exactly the params keys and the code
its module reads, so DVC reruns a stage exactly when something it depends on changes."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest
import yaml

from girml import cli
from girml.stages.code_deps import DATA_SUFFIXES, ROOT, dvc_stages, expected
from girml.stages.contract import STAGE_PARAMS, StageParams


def _dvc_stages() -> dict[str, dict]:
    return dvc_stages(ROOT / "dvc.yaml")


def _verb(stage: dict) -> str:
    return stage["cmd"].split()[1]  # "girml VERB [NAME] --params params.yaml"


def _module(verb: str) -> str:
    return verb.replace("-", "_")  # girml approach-eval -> girml/stages/approach_eval.py


def declared_code(stage: dict) -> list[str]:
    """The stage's declared girml code: modules and folders (data files it reads, like the
    package pin file, are declared too but are not imports)."""
    return [
        d
        for d in stage.get("deps", [])
        if str(d).startswith("girml") and not str(d).endswith(DATA_SUFFIXES)
    ]


def test_collect_declares_the_package_pin_file() -> None:
    assert "girml/data/package_photos.csv" in _dvc_stages()["collect"]["deps"]


def test_dvc_yaml_declares_exactly_the_params_each_verb_reads() -> None:
    stages = _dvc_stages()
    for name, stage in stages.items():
        assert sorted(stage.get("params", [])) == sorted(STAGE_PARAMS[_verb(stage)]), name
    assert {_verb(s) for s in stages.values()} == set(STAGE_PARAMS)


def test_dvc_yaml_declares_exactly_the_code_each_stage_runs() -> None:
    wrong = []
    stages = _dvc_stages()
    for name, want in expected(ROOT / "dvc.yaml").items():
        if sorted(declared_code(stages[name])) != want:
            wrong.append(f"{name}: declare\n      - " + "\n      - ".join(want))
    assert not wrong, (
        "dvc.yaml code deps are not the stage's imports (python -m girml.stages.code_deps "
        "--write):\n" + "\n".join(wrong)
    )


def test_stage_modules_read_params_only_through_stage_params() -> None:
    for verb in STAGE_PARAMS:
        module = _module(verb)
        source = inspect.getsource(importlib.import_module(f"girml.stages.{module}"))
        for direct in ("load_section(", "read_params(", "yaml.safe_load("):
            assert direct not in source, f"girml {verb} reads params with {direct}...)"
        assert f'StageParams(params, "{verb}"' in source, verb
        # the verb itself only runs its stage module
        verb_source = inspect.getsource(getattr(cli, module))
        assert f"from girml.stages import {module} as this" in verb_source, verb
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


def test_a_foreach_stage_reads_only_its_own_item(tmp_path: Path) -> None:
    """``approach@x`` declares ``study.approaches.${key}``: it reads approach x, not approach y
    nor the rest of the study section (so editing y does not rerun x)."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["study"]["approaches"] = {
        "x": {"kind": "unified", "model": {"type": "plain_cnn"}},
        "y": {"kind": "release"},
    }
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    reads = StageParams(path, "approach", key="x")
    assert reads.value("study.approaches.x").model == {"type": "plain_cnn"}
    assert reads.value("study.classifier_steps") == params["study"]["classifier_steps"]
    with pytest.raises(KeyError, match=r"approach reads study\.approaches\.y"):
        reads.value("study.approaches.y")
    with pytest.raises(KeyError, match="approach reads study"):
        reads.section("study")
    stages = _dvc_stages()
    assert "study.approaches.${key}" in stages["approach"]["params"]
    assert stages["approach"]["outs"] == ["models/approaches/${key}"]
