"""Logged models (girml/tracking/logged_models.py): a folder logged as a pyfunc from code and
downloaded back by URI, in a real SQLite store.

The folder and the code file are the test's own (a scale factor in a text file): tracking never
builds a network, so none is needed here. The girml network's side (a model folder, the
restorer code): tests/artifacts/test_registered.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import mlflow
import mlflow.pyfunc
import mlflow.pytorch
import numpy as np
import pytest
import torch
import yaml

from girml.core.errors import UnsafeModelError
from girml.tracking.logged_models import (
    MODEL_ARTIFACT,
    MODEL_FORMAT,
    check_example,
    download_artifacts,
    download_model,
    log_model_dir,
    pip_requirements,
)
from girml.tracking.runs import start_run
from girml.tracking.store import configure
from girml.tracking.versions import REGISTERED_MODEL

pytestmark = pytest.mark.usefixtures("restore_environ")

EXAMPLE = np.random.default_rng(0).random((1, 3, 8, 8), dtype=np.float32)
CODE = """
import mlflow
import numpy as np
from mlflow.pyfunc import PythonModel


class Scale(PythonModel):
    def load_context(self, context):
        with open(f"{context.artifacts['model']}/scale.txt", encoding="utf-8") as fh:
            self.scale = float(fh.read())

    def predict(self, context, model_input, params=None):
        return np.asarray(model_input, dtype=np.float32) * np.float32(self.scale)


mlflow.models.set_model(Scale())
"""


@pytest.fixture
def code(tmp_path: Path) -> Path:
    path = tmp_path / "scale_model.py"
    path.write_text(CODE, encoding="utf-8")
    return path


def model_folder(root: Path, scale: float) -> Path:
    folder = root / MODEL_ARTIFACT
    folder.mkdir(parents=True)
    (folder / "scale.txt").write_text(str(scale), encoding="utf-8")
    (folder / "weights.bin").write_bytes(bytes(range(256)))
    return folder


def test_a_logged_folder_comes_back_byte_for_byte(
    mlflow_store: Path, tmp_path: Path, code: Path
) -> None:
    folder = model_folder(tmp_path / "src", 0.5)
    with start_run("girml-test", mlflow_store, log_system_metrics=False):
        version = log_model_dir(
            folder, code=code, input_example=EXAMPLE, output_example=EXAMPLE * 0.5
        )
    assert version == 1
    uri = f"models:/{REGISTERED_MODEL}/{version}"
    (tmp_path / "dl").mkdir()
    local = download_model(uri, tmp_path / "dl")
    assert local.is_relative_to(tmp_path / "dl")
    assert sorted(p.name for p in local.iterdir()) == ["scale.txt", "weights.bin"]
    assert (local / "weights.bin").read_bytes() == bytes(range(256))

    mlmodel = yaml.safe_load((local.parents[1] / "MLmodel").read_text(encoding="utf-8"))
    assert mlmodel["metadata"]["format"] == MODEL_FORMAT
    assert "pytorch" not in mlmodel["flavors"]
    # no input schema (the code checks its inputs); the output tensor of any size
    assert mlmodel["signature"]["inputs"] is None
    signature = yaml.safe_load(mlmodel["signature"]["outputs"])
    assert signature[0]["tensor-spec"]["shape"] == [-1, 3, -1, -1]
    requirements = (local.parents[1] / "requirements.txt").read_text(encoding="utf-8").split()
    assert requirements[1:] == pip_requirements()  # after the mlflow line MLflow adds
    # what `mlflow models serve` loads runs the code file over the same folder
    served = mlflow.pyfunc.load_model(uri)
    batch = np.ones((2, 3, 5, 7), dtype=np.float32)
    np.testing.assert_allclose(served.predict(batch), batch * 0.5)
    # a local MLflow model folder is read in place
    assert download_model(str(local.parents[1])) == local


def test_logging_needs_an_example_of_the_right_shape_and_a_run(
    mlflow_store: Path, tmp_path: Path, code: Path
) -> None:
    folder = model_folder(tmp_path, 1.0)
    with pytest.raises(RuntimeError, match="active run"):
        log_model_dir(folder, code=code, input_example=EXAMPLE, output_example=EXAMPLE)
    with pytest.raises(ValueError, match=re.escape("(1,3,H,W), got shape (3, 8, 8)")):
        check_example(EXAMPLE[0])
    with pytest.raises(ValueError, match="float32, got float64"):
        check_example(EXAMPLE.astype(np.float64))
    with (
        start_run("girml-test", mlflow_store, log_system_metrics=False),
        pytest.raises(ValueError, match=r"\(1,3,H,W\)"),
    ):
        log_model_dir(folder, code=code, input_example=EXAMPLE[0], output_example=EXAMPLE)


def test_a_pickled_version_is_refused_without_being_opened(
    mlflow_store: Path, tmp_path: Path
) -> None:
    with start_run("girml-test", mlflow_store, log_system_metrics=False):
        mlflow.pytorch.log_model(
            torch.nn.Conv2d(3, 3, 1),
            name="model",
            registered_model_name=REGISTERED_MODEL,
            serialization_format="pickle",
            pip_requirements=["torch"],
        )
    uri = f"models:/{REGISTERED_MODEL}/1"
    (tmp_path / "dl").mkdir()
    with pytest.raises(UnsafeModelError, match="MLflow's pytorch flavour, pickle format") as exc:
        download_model(uri, tmp_path / "dl")
    assert exc.value.source == uri and "girml convert-model" in str(exc.value)


def test_what_is_not_a_girml_model_is_named(mlflow_store: Path, tmp_path: Path) -> None:
    configure(mlflow_store)
    missing = f"models:/{REGISTERED_MODEL}/7"
    with pytest.raises(ValueError, match=f"cannot load model {missing}"):
        download_model(missing, tmp_path)
    with pytest.raises(ValueError, match=f"cannot download {missing}"):
        download_artifacts(missing, tmp_path)
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    (folder / "MLmodel").write_text("flavors: {python_function: {loader_module: x}}\n")
    with pytest.raises(ValueError, match="neither a girml model folder nor a pytorch model"):
        download_model(str(folder))
    (folder / "MLmodel").write_text("artifact_path: model\n")
    with pytest.raises(ValueError, match="lists no flavors"):
        download_model(str(folder))
