"""The models-from-code file of every registered version (girml/artifacts/restorer_model.py):
what a user of the registry gets from MLflow's own loader, ``mlflow.pyfunc.load_model`` (the one
``mlflow models serve`` uses), without girml's loader (a real SQLite MLflow store)."""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import numpy as np
import torch

from girml.artifacts.registered import log_and_register_model
from girml.tracking.runs import start_run
from girml.tracking.versions import REGISTERED_MODEL
from tests.factories import TINY_MODEL as TINY
from tests.factories import tiny_model


def test_pyfunc_load_model_restores_a_batch(mlflow_store: Path) -> None:
    model = tiny_model(4)
    example = np.random.default_rng(0).random((1, 3, 16, 16), dtype=np.float32)
    with start_run("girml-test", mlflow_store, log_system_metrics=False):
        version = log_and_register_model(model, example, model_cfg=TINY)
    served = mlflow.pyfunc.load_model(f"models:/{REGISTERED_MODEL}/{version}")
    batch = np.random.default_rng(1).random((2, 3, 24, 20), dtype=np.float32)  # any size
    out = served.predict(batch)
    with torch.no_grad():
        expected = model(torch.from_numpy(batch)).clamp(0, 1).numpy()
    assert out.shape == (2, 3, 24, 20) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
    np.testing.assert_allclose(out, expected, atol=1e-6)
