"""The whole-file params check that every stage verb runs before touching an output."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from girml.cli import app
from girml.config import ConfigError, ModelConfig, TrainConfig, TuneConfig
from girml.params_check import check_params
from girml.tuning.space import check_space
from tests.factories import REPO, write_params

STAGE_VERBS = [
    "collect",
    "synthesize",
    "validate",
    "tune",
    "train",
    "specialists",
    "evaluate",
    "interpret",
]


def project_params() -> dict[str, Any]:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def broken(section: str, key: str, value: Any) -> dict[str, Any]:
    params = copy.deepcopy(project_params())
    params[section][key] = value
    return params


def test_project_params_pass() -> None:
    cfgs = check_params(REPO / "params.yaml")
    assert set(cfgs) == set(project_params()) - {"profile"}  # a name, not a section


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        (
            "model",
            "type",
            "unet9000",
            "model.type: unknown architecture 'unet9000'; available: nafnet, plain_cnn, "
            "prompt_nafnet",
        ),
        ("train", "patch_size", 256, "train.patch_size: 256 is larger than synthesize.patch_size"),
        ("train", "lr", -1, "train.lr: Input should be greater than 0 (got -1)"),
        ("evaluate", "baselines", ["identity", "nope"], "evaluate.baselines.1: unknown baseline"),
        ("evaluate", "specialist_families", ["fog"], "evaluate.specialist_families: unknown"),
        ("collect", "sources", [{"type": "builtin", "include": ["moon", "mars"]}], "'mars'"),
        ("tune", "steps_per_trial", 10, "tune.report_every must be <= tune.steps_per_trial"),
        ("interpret", "lam_steps", 1, "interpret.lam_steps: Input should be greater"),
        (
            "study",
            "approaches",
            {"big": {"kind": "unified", "model": {"type": "unet9000"}}},
            "study.approaches.big.model.type: unknown architecture 'unet9000'",
        ),
        (
            "study",
            "approaches",
            {"wide": {"kind": "unified", "model": {"width": 0}}},
            "study.approaches.wide.model.width: Input should be greater",
        ),
        (
            "study",
            "approaches",
            {"median": {"kind": "release"}},
            "study.approaches.median: the name of an evaluate method or baseline",
        ),
        (
            "protocols",
            "run",
            ["allinone-3"],
            "protocols.run: allinone-3 need(s) test set 'rain100l', which protocols.sets does "
            "not list. Get Rain100L from https://github.com/XLearning-SCU/2022-CVPR-AirNet",
        ),
        (
            "protocols",
            "custom",
            {"mine": {"tasks": [{"set": "cbsd68"}], "convention": "psnr-rgb"}},
            "protocols.custom.mine: unknown convention(s) ['psnr-rgb']; known: ['airnet'",
        ),
    ],
)
def test_bad_value_names_its_key(
    tmp_path: Path, section: str, key: str, value: Any, message: str
) -> None:
    path = write_params(tmp_path / "params.yaml", broken(section, key, value))
    with pytest.raises(ConfigError) as exc:
        check_params(path)
    assert message in str(exc.value)
    assert "tune.space" not in str(exc.value) or section == "tune"


def test_bad_degradation_op_param_is_named(tmp_path: Path) -> None:
    params = project_params()
    params["degradations"]["families"]["noise"]["ops"]["gaussian_noise"]["params"]["sigma"] = {
        "id": [15, 50],
        "ood": [50, 300],
    }
    with pytest.raises(ConfigError, match=r"degradations\.families\.noise\.ops\.gaussian_noise"):
        check_params(write_params(tmp_path / "params.yaml", params))


def test_tune_does_not_take_the_blame_for_the_base_model() -> None:
    """Before: `model.type: unet9000` was reported as `tune.space.train.lr: value ... invalid`."""
    tune = TuneConfig.model_validate(project_params()["tune"])
    with pytest.raises(ConfigError, match=r"^model\.type: unknown architecture 'unet9000'"):
        check_space(tune, ModelConfig(type="unet9000"), TrainConfig())


@pytest.mark.parametrize("verb", STAGE_VERBS)
def test_every_stage_checks_the_whole_file_first(
    verb: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each stage stops on a typo in any section, before it creates or changes a file."""
    monkeypatch.chdir(tmp_path)
    write_params(tmp_path / "params.yaml", broken("model", "type", "unet9000"))
    ckpt = tmp_path / "checkpoints" / "train" / "checkpoint-5"
    ckpt.mkdir(parents=True)
    (ckpt / "model.safetensors").write_bytes(b"resumable")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))

    result = CliRunner().invoke(app, [verb, "--params", "params.yaml"])

    assert result.exit_code == 2, result.output
    assert "model.type: unknown architecture 'unet9000'" in result.output
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert (ckpt / "model.safetensors").read_bytes() == b"resumable"
