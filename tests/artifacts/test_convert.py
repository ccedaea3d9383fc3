"""The conversion of a trusted pickled model (girml/artifacts/convert.py) into a model folder that
loads safely; the ``girml convert-model`` verb is tested in ``tests/test_cli_convert.py``.

Real parts: MLflow's own pickled ``pytorch`` flavour (a version registered in a SQLite store with
its run's ``model.*`` params), ``torch.save`` files.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import mlflow.pytorch
import pytest
import torch
import yaml

from girml.artifacts.convert import convert_model
from girml.artifacts.loading import load_model
from girml.artifacts.store import WEIGHTS_FILE, read_model_config, save_model_dir
from girml.config import ModelConfig
from girml.tracking.logs import log_params_flat
from girml.tracking.runs import start_run
from girml.tracking.versions import REGISTERED_MODEL
from tests.artifacts.test_loading import hostile_module
from tests.factories import TINY_MODEL as TINY
from tests.factories import tiny_model

X = torch.rand(2, 3, 19, 23, generator=torch.Generator().manual_seed(0))


def same_outputs(folder: Path, original: torch.nn.Module) -> bool:
    with torch.no_grad():
        return torch.equal(load_model(str(folder))(X), original(X))


def write_config(path: Path, cfg: ModelConfig) -> Path:
    path.write_text(yaml.safe_dump({"model": cfg.model_dump(mode="json")}), encoding="utf-8")
    return path


def test_an_untrusted_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    source = tmp_path / "hostile.pth"
    torch.save(hostile_module(marker), source)
    out = tmp_path / "converted"
    with pytest.raises(ValueError, match="confirm that you trust it"):
        convert_model(str(source), out, trusted=False)
    assert not marker.exists() and not out.exists()


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
