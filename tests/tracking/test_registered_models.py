"""Registered versions are weights plus config (no pickle); older pickled versions are refused
(tests/models/test_model_safety.py) and converted on request (tests/models/test_convert.py).

A real SQLite MLflow store in a temporary folder; no mocks except the pickle modules that a
weights-plus-config load must never touch.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import cloudpickle
import mlflow
import mlflow.pyfunc
import numpy as np
import pytest
import torch
import yaml

from girml.models.store import load_model, read_model_config
from girml.tracking.mlflow import (
    MODEL_ARTIFACT,
    MODEL_FORMAT,
    REGISTERED_MODEL,
    log_and_register_model,
    start_run,
)
from tests.tracking.test_tracking import TINY, tiny_model

EXAMPLE = np.random.default_rng(0).random((1, 3, 16, 16), dtype=np.float32)


@pytest.fixture
def store(mlflow_store: Path) -> Path:
    """A fresh SQLite store per test (tests/conftest.py); the project root beside it."""
    root = mlflow_store / "project"
    root.mkdir()
    return root


def refuse_unpickling(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a weights-plus-config version must load without unpickling")

    for module, name in [
        (pickle, "load"),
        (pickle, "loads"),
        (pickle, "Unpickler"),
        (cloudpickle, "load"),
        (cloudpickle, "loads"),
    ]:
        monkeypatch.setattr(module, name, refuse)


def test_a_registered_version_is_a_model_folder_rebuilt_without_unpickling(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tiny_model(3)
    with start_run("girml-test", store, log_system_metrics=False):
        version = log_and_register_model(model, EXAMPLE, model_cfg=TINY)
    assert version == 1
    uri = f"models:/{REGISTERED_MODEL}/{version}"

    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp_path / "dl"))
    mlmodel = yaml.safe_load((local / "MLmodel").read_text())
    assert "pytorch" not in mlmodel["flavors"]
    pyfunc = mlmodel["flavors"]["python_function"]
    assert mlmodel["metadata"]["format"] == MODEL_FORMAT
    folder = local / pyfunc["artifacts"][MODEL_ARTIFACT]["path"]
    assert sorted(p.name for p in folder.iterdir()) == ["config.yaml", "weights.pt"]
    assert read_model_config(folder)["model"] == TINY.model_dump(mode="json")
    assert not list(local.rglob("*.pkl")) and not list(local.rglob("*.pth"))

    refuse_unpickling(monkeypatch)
    loaded = load_model(uri)
    assert not loaded.training
    x = torch.rand(1, 3, 19, 23, generator=torch.Generator().manual_seed(0))  # any size
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_pyfunc_load_model_restores_a_batch(store: Path) -> None:
    """What a user of the registry does without girml's loader: ``mlflow.pyfunc.load_model``."""
    model = tiny_model(4)
    with start_run("girml-test", store, log_system_metrics=False):
        version = log_and_register_model(model, EXAMPLE, model_cfg=TINY)
    served = mlflow.pyfunc.load_model(f"models:/{REGISTERED_MODEL}/{version}")
    batch = np.random.default_rng(1).random((2, 3, 24, 20), dtype=np.float32)
    out = served.predict(batch)
    with torch.no_grad():
        expected = model(torch.from_numpy(batch)).clamp(0, 1).numpy()
    assert out.shape == (2, 3, 24, 20) and out.dtype == np.float32
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_a_broken_version_names_the_uri(store: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=f"models:/{REGISTERED_MODEL}/7"):
        load_model(f"models:/{REGISTERED_MODEL}/7")
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    (folder / "MLmodel").write_text("flavors: {python_function: {loader_module: x}}\n")
    with pytest.raises(ValueError, match="neither a girml model folder nor a pytorch model"):
        load_model(str(folder))
