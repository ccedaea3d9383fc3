"""``girml convert-model``: a trusted pickled model becomes a model folder that loads safely.

Real parts: MLflow's own pickled ``pytorch`` flavour (a saved folder, and a version registered
in a SQLite store with its run's ``model.*`` params), ``torch.save`` files, the CLI.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import mlflow.pytorch
import pytest
import torch
import yaml
from typer.testing import CliRunner

from girml.config import ModelConfig
from girml.errors import EX_BAD_INPUT
from girml.models.convert import convert_model
from girml.models.store import WEIGHTS_FILE, load_model, read_model_config, save_model_dir
from girml.tracking.mlflow import REGISTERED_MODEL, log_params_flat, start_run
from pipelines.cli import app
from tests.models.test_model_safety import hostile_module, one_error_line
from tests.tracking.test_tracking import TINY, tiny_model

X = torch.rand(2, 3, 19, 23, generator=torch.Generator().manual_seed(0))


def same_outputs(folder: Path, original: torch.nn.Module) -> bool:
    with torch.no_grad():
        return torch.equal(load_model(str(folder))(X), original(X))


def write_config(path: Path, cfg: ModelConfig) -> Path:
    path.write_text(yaml.safe_dump({"model": cfg.model_dump(mode="json")}), encoding="utf-8")
    return path


def test_help_says_it_runs_code_from_the_file() -> None:
    result = CliRunner().invoke(app, ["convert-model", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "THIS RUNS CODE FROM THE FILE" in text
    assert "only on files that you or your team produced" in text
    assert "--i-trust-this-file" in text


def test_an_mlflow_pickled_folder_converts_to_the_same_model(tmp_path: Path) -> None:
    original = tiny_model(3)
    source = tmp_path / "old"
    mlflow.pytorch.save_model(
        original, str(source), serialization_format="pickle", pip_requirements=["torch"]
    )
    config = write_config(tmp_path / "params.yaml", TINY)
    out = tmp_path / "converted"
    args = ["convert-model", str(source), "-o", str(out), "--config", str(config)]
    result = CliRunner().invoke(app, [*args, "--i-trust-this-file"])
    assert result.exit_code == 0, result.output
    assert f"converted {source} (data/model.pth" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml", WEIGHTS_FILE]
    written = read_model_config(out)
    assert written["model"] == TINY.model_dump(mode="json")
    assert written["converted_from"]["file"] == "data/model.pth"
    assert same_outputs(out, original)


def test_without_the_flag_nothing_is_read_or_written(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    source = tmp_path / "hostile.pth"
    torch.save(hostile_module(marker), source)
    out = tmp_path / "converted"
    result = CliRunner().invoke(app, ["convert-model", str(source), "-o", str(out)])
    line = one_error_line(result.output)
    assert result.exit_code == EX_BAD_INPUT
    assert "runs any code in it" in line and "--i-trust-this-file" in line
    assert not marker.exists() and not out.exists()
    with pytest.raises(ValueError, match="confirm that you trust it"):
        convert_model(str(source), out, trusted=False)
    assert not marker.exists()


def test_a_registered_pickled_version_converts_with_its_runs_params(mlflow_store: Path) -> None:
    root = mlflow_store / "project"
    root.mkdir()
    original = tiny_model(4)
    with start_run("girml-test", root, log_system_metrics=False):
        log_params_flat({"model": TINY})
        mlflow.pytorch.log_model(
            original,
            name="model",
            registered_model_name=REGISTERED_MODEL,
            serialization_format="pickle",
            pip_requirements=["torch"],
        )
    out = root / "converted"
    done = convert_model(f"models:/{REGISTERED_MODEL}/1", out, trusted=True, project_root=root)
    assert done.config_from == f"models:/{REGISTERED_MODEL}/1 (run params)"
    assert same_outputs(out, original)
    assert read_model_config(out)["converted_from"]["source"] == f"models:/{REGISTERED_MODEL}/1"


def test_a_folder_whose_weights_are_a_pickled_module_uses_its_own_config(tmp_path: Path) -> None:
    original = tiny_model(5)
    folder = save_model_dir(tiny_model(0), TINY, tmp_path / "m")
    torch.save(original, folder / WEIGHTS_FILE)  # the whole module, as some scripts save it
    out = tmp_path / "converted"
    done = convert_model(str(folder), out, trusted=True)
    assert done.config_from == str(folder / "config.yaml")
    assert same_outputs(out, original)


def test_a_checkpoint_file_needs_a_config_that_fits(tmp_path: Path) -> None:
    original = tiny_model(6)
    checkpoint = tmp_path / "ckpt.pth"
    torch.save({"state_dict": original.state_dict(), "step": 100}, checkpoint)
    out = tmp_path / "converted"
    with pytest.raises(ValueError, match="pass --config FILE"):
        convert_model(str(checkpoint), out, trusted=True)
    wider = write_config(tmp_path / "wider.yaml", TINY.model_copy(update={"width": 8}))
    with pytest.raises(ValueError, match=r"ckpt\.pth.*does not match.*'intro\.weight'"):
        convert_model(str(checkpoint), out, trusted=True, config=wider)
    assert not out.exists()
    fits = write_config(tmp_path / "fits.yaml", TINY)
    convert_model(str(checkpoint), out, trusted=True, config=fits)
    assert same_outputs(out, original)
    with pytest.raises(ValueError, match="pass --force"):
        convert_model(str(checkpoint), out, trusted=True, config=fits)
