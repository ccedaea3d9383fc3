"""The MLflow model behind every registered ``gir-restorer`` version: weights plus config.

A version holds a model folder (``weights.pt`` + ``config.yaml``, :mod:`girml.artifacts.store`)
as its ``model`` artifact and this file as MLflow "models from code": MLflow copies the file into
the logged model and runs it when the model is loaded with ``mlflow.pyfunc.load_model``, instead
of unpickling a Python object. Loading rebuilds the network with ``build_model(config)`` and
loads its tensors with ``torch.load(weights_only=True)``, so nothing executes code from the
artifact store. :func:`girml.tracking.logged_models.log_model_dir` logs it (its ``code``);
girml's own loader reads the folder directly (:func:`girml.tracking.logged_models.download_model`).

Do not import this module: it registers its model with ``mlflow.models.set_model`` when run,
which is what MLflow expects of a models-from-code file.
"""

from __future__ import annotations

from typing import Any

import mlflow
import numpy as np
import torch
from mlflow.pyfunc import PythonModel

from girml.artifacts.store import load_model_dir
from girml.tracking.logged_models import MODEL_ARTIFACT


class GirRestorer(PythonModel):
    """pyfunc wrapper: (B,3,H,W) float32 in [0,1] in, the restored (B,3,H,W) float32 out."""

    def load_context(self, context: Any) -> None:
        """Rebuild the network from the ``model`` artifact (a model folder)."""
        self.model = load_model_dir(context.artifacts[MODEL_ARTIFACT])

    # model_input has no type hint: MLflow would read one as a schema of its own and warn,
    # while the logged signature already says (-1,3,-1,-1) float32
    def predict(self, context: Any, model_input, params: dict[str, Any] | None = None) -> Any:
        """Restore a batch: ``model_input`` is array-like (B,3,H,W) float32 in [0,1]."""
        batch = torch.as_tensor(np.asarray(model_input, dtype=np.float32))
        with torch.inference_mode():
            return self.model(batch).clamp(0, 1).numpy()


mlflow.models.set_model(GirRestorer())
