"""The MLflow model behind every registered ``gir-restorer`` version: weights plus config.

A version holds a model folder (``weights.pt`` + ``config.yaml``, :mod:`girml.artifacts.store`)
as its ``model`` artifact and this file as MLflow "models from code": MLflow copies the file into
the logged model and runs it when the model is loaded with ``mlflow.pyfunc.load_model``, instead
of unpickling a Python object. Loading rebuilds the network with ``build_model(config)`` and
loads its tensors with ``torch.load(weights_only=True)``, so nothing is unpickled.
:func:`girml.tracking.logged_models.log_model_dir` logs it (its ``code``); girml's own loader
reads the folder directly and runs no code from the version
(:func:`girml.tracking.logged_models.download_model`).

It takes arrays, (N,3,H,W) float32 in [0,1], and answers arrays; or encoded images (PNG/JPEG
bytes or base64, a column ``image``) and answers one base64 PNG per image
(:mod:`.image_payload`). A refused input raises :class:`InvalidInput`, which ``mlflow models
serve`` answers with HTTP 400 and one short message that never quotes the data. The version
carries the girml package as code (``code/girml/``, :func:`.registered.log_and_register_model`),
so it loads where girml is not installed.

Do not import this module: it registers its model with ``mlflow.models.set_model`` when run,
which is what MLflow expects of a models-from-code file.
"""

from __future__ import annotations

from typing import Any

import mlflow
import numpy as np
import pandas as pd
import torch
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel

from girml.artifacts.image_payload import IMAGE_COLUMN, InputError, encode_png_base64, parse_input
from girml.artifacts.store import load_model_dir
from girml.core.imageio import to_tensor, to_uint8
from girml.tracking.logged_models import MODEL_ARTIFACT


class InvalidInput(MlflowException):
    """A refused input: HTTP 400 (``INVALID_PARAMETER_VALUE``) from ``mlflow models serve``.

    MLflow's scoring server rewrites the message of any ``MlflowException`` that ``predict``
    raises to ``Failed to predict data '<the input>'...`` before it answers, which would quote
    the request back. The message given here is kept: later assignments to it are ignored, so
    the answer's ``message`` is the one short line of :class:`.image_payload.InputError`.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, error_code=INVALID_PARAMETER_VALUE)

    @property
    def message(self) -> str:
        return self._message

    @message.setter
    def message(self, value: str) -> None:
        if not hasattr(self, "_message"):  # set once, by MlflowException.__init__
            self._message = value


class GirRestorer(PythonModel):
    """pyfunc wrapper: an array batch in, the restored array out; encoded images in, PNGs out."""

    def load_context(self, context: Any) -> None:
        """Rebuild the network from the ``model`` artifact (a model folder)."""
        self.model = load_model_dir(context.artifacts[MODEL_ARTIFACT])

    def _restore(self, batch: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.model(batch).clamp(0, 1)

    # model_input has no type hint: MLflow would read one as a schema of its own and enforce it,
    # while this model takes two forms that no one MLflow schema describes (it checks them itself)
    def predict(self, context: Any, model_input, params: dict[str, Any] | None = None) -> Any:
        """Restore an array batch or encoded images.

        Args:
            context: MLflow's model context (unused: the network is loaded).
            model_input: (N,3,H,W) float32 in [0,1], array-like; or PNG/JPEG images as bytes or
                base64 text, alone, in a list or in a column ``image`` (a DataFrame or dict).
            params: unused.

        Returns:
            For an array: the restored (N,3,H,W) float32 array in [0,1]. For encoded images: a
            DataFrame with one column ``image``, one base64 PNG per input image, same order.

        Raises:
            InvalidInput: the input is refused (one short line; see :mod:`.image_payload`).
        """
        try:
            parsed = parse_input(model_input)
        except InputError as exc:
            raise InvalidInput(str(exc)) from None
        if isinstance(parsed, np.ndarray):
            return self._restore(torch.as_tensor(parsed)).numpy()
        restored = [to_uint8(self._restore(to_tensor(pixels))) for pixels in parsed]
        return pd.DataFrame({IMAGE_COLUMN: [encode_png_base64(pixels) for pixels in restored]})


mlflow.models.set_model(GirRestorer())
