"""Logged models: a model folder logged as an MLflow pyfunc, and downloaded back by URI.

Registered versions are weights plus config: the run's ``model`` artifact is an MLflow pyfunc
model whose :data:`MODEL_ARTIFACT` artifact is a model folder (``weights.pt`` +
``config.yaml``, written by the caller) and whose code is a "models from code" file the caller
names (``girml/artifacts/restorer_model.py``), with the code folders it imports (the girml
package) when the caller names them. This module never builds or loads a network:
:func:`log_model_dir` logs a folder that already exists and :func:`download_model` returns the
folder that a URI names. Models are logged with explicit pip requirements (what the girml code
needs to load and serve a model), so MLflow never infers them (nothing reaches the network).

Versions registered by older girml versions are pickled modules (MLflow's ``pytorch``
flavour): :func:`download_model` refuses them with :class:`~girml.core.errors.UnsafeModelError`,
since unpickling runs whatever code the file holds; ``girml migrate-registry`` rewrites them
once as weights plus config. (MLflow's ``pt2`` format is no option: an exported graph is
specialised to the example's batch size and to H, W multiples of the padding multiple, and
MLflow loads it with ``weights_only=False`` too.)
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import mlflow
import mlflow.artifacts
import mlflow.pyfunc
import numpy as np
import torch
import yaml
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature, infer_signature
from mlflow.types.schema import Schema, TensorSpec

import girml
from girml.core.errors import UnsafeModelError
from girml.tracking.versions import REGISTERED_MODEL

# registered versions: a pyfunc from code whose MODEL_ARTIFACT is a model folder
MODEL_FORMAT = "girml-weights-config"
MODEL_ARTIFACT = "model"
MLMODEL_FILE = "MLmodel"
# what the girml code a model runs imports when MLflow loads it (besides mlflow), pinned to the
# versions here; torch without its local tag (+cpu, +cu121)
_SERVING_DISTRIBUTIONS = ("numpy", "pandas", "pillow", "pydantic", "pyyaml", "ruamel.yaml")


def pip_requirements() -> list[str]:
    """The pip requirements logged with a model: torch and the distributions that the girml
    code it carries imports at load time, at the versions installed here."""
    pinned = [f"{name}=={importlib.metadata.version(name)}" for name in _SERVING_DISTRIBUTIONS]
    return [f"torch=={torch.__version__.split('+')[0]}", *pinned]


def _output_signature(signature: ModelSignature) -> ModelSignature:
    """Only the output tensor spec of ``signature``, with its batch, height and width freed.

    No input schema: the models take arrays or encoded images, which no one MLflow schema
    describes, and MLflow would refuse the other form before the model's own checks run (with a
    message that quotes the data). The output spec is that of an array input.
    """
    outputs = Schema(
        [TensorSpec(s.type, (-1, s.shape[1], -1, -1), s.name) for s in signature.outputs.inputs]
    )
    return ModelSignature(inputs=None, outputs=outputs)


def check_example(input_example: np.ndarray) -> None:
    """Check a logged model's input example: (1,3,H,W) float32.

    Raises:
        ValueError: another shape or dtype (the message gives it).
    """
    if input_example.ndim != 4 or input_example.shape[:2] != (1, 3):
        raise ValueError(f"input_example must be (1,3,H,W), got shape {input_example.shape}")
    if input_example.dtype != np.float32:
        raise ValueError(f"input_example must be float32, got {input_example.dtype}")


def log_model_dir(
    folder: Path,
    *,
    code: Path,
    input_example: np.ndarray,
    output_example: np.ndarray,
    name: str = "model",
    registered_name: str = REGISTERED_MODEL,
    code_paths: Sequence[Path] = (),
) -> int:
    """Log model folder ``folder`` to the active run and register it as a new version.

    The logged model is a pyfunc from code (``code``) holding ``folder`` as its
    :data:`MODEL_ARTIFACT` artifact, ``code_paths`` under ``code/`` (MLflow puts that folder
    first on ``sys.path`` when it loads the model), :func:`pip_requirements`, the input example
    (MLflow checks that it serves before the version is registered), and an output signature
    inferred from the examples, relaxed to (-1,3,-1,-1) since the networks accept any size; no
    input schema (see :func:`_output_signature`). The girml version and :data:`MODEL_FORMAT` are
    stored in the model's metadata.

    Args:
        folder: a model folder (``weights.pt`` + ``config.yaml``); copied, not modified.
        code: the models-from-code file MLflow runs to load the model.
        input_example: (1,3,H,W) float32 in [0,1]; keep it small (it is stored as JSON).
        output_example: what the network returns for ``input_example``.
        name: name of the logged model within the run.
        registered_name: registered model name.
        code_paths: files or folders (a package) that ``code`` imports, copied into the model.

    Returns:
        The new version number.

    Raises:
        ValueError: ``input_example`` is not (1,3,H,W) float32.
        RuntimeError: no active run.
    """
    check_example(input_example)
    if mlflow.active_run() is None:
        raise RuntimeError("logging a model needs an active run (see start_run)")
    info = mlflow.pyfunc.log_model(
        name=name,
        python_model=str(code),
        artifacts={MODEL_ARTIFACT: str(folder)},
        signature=_output_signature(infer_signature(input_example, output_example)),
        input_example=input_example,
        registered_model_name=registered_name,
        pip_requirements=pip_requirements(),
        code_paths=[str(path) for path in code_paths] or None,
        metadata={"girml_version": girml.__version__, "format": MODEL_FORMAT},
    )
    return int(info.registered_model_version)


def _reason(exc: MlflowException | OSError) -> str:
    return exc.message if isinstance(exc, MlflowException) else str(exc)


def download_artifacts(uri: str, dst: Path) -> Path:
    """Download the artifacts ``uri`` names (``models:/...``, ``runs:/...``) into folder ``dst``.

    The store must be configured (:func:`girml.tracking.store.configure`).

    Returns:
        The local path of what was downloaded (a folder or a file under ``dst``).

    Raises:
        ValueError: ``cannot download <uri>: <MLflow's reason>``.
    """
    try:
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dst)))
    except (MlflowException, OSError) as exc:
        raise ValueError(f"cannot download {uri}: {_reason(exc)}") from None


def download_model(uri: str, dst: Path | None = None) -> Path:
    """The model folder of a model logged by :func:`log_model_dir`, downloaded into ``dst``.

    Args:
        uri: ``models:/<name>@<alias>``, ``models:/<name>/<version>``, ``runs:/<id>/<name>``,
            ``models:/<model id>``, or a local MLflow model folder (read in place: nothing is
            downloaded).
        dst: an existing folder to download into (e.g. a temporary one the caller removes);
            None: a new temporary folder that MLflow makes and no one removes.

    Returns:
        The model folder (``weights.pt`` + ``config.yaml``); nothing in it has been read.

    Raises:
        ValueError: the URI does not resolve to a girml model (the message names it).
        girml.core.errors.UnsafeModelError: a pickled model (MLflow's ``pytorch`` flavour): one line
            naming ``uri`` and how to convert it.
    """
    local = Path(uri)
    if not (local / MLMODEL_FILE).is_file():
        # a refusal or an error is one line, not under MLflow's download progress bars
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        try:
            target = None if dst is None else str(dst)
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=target))
        except (MlflowException, OSError) as exc:
            raise ValueError(f"cannot load model {uri}: {_reason(exc)}") from None
    flavors = model_flavors(local, uri)
    artifacts = flavors.get("python_function", {}).get("artifacts", {})
    if MODEL_ARTIFACT in artifacts:
        return local / artifacts[MODEL_ARTIFACT]["path"]
    if "pytorch" in flavors:
        raise UnsafeModelError(uri, pickled_flavor(flavors["pytorch"]))
    raise ValueError(f"{uri}: neither a girml model folder nor a pytorch model ({sorted(flavors)})")


def pickled_flavor(pytorch_flavor: Mapping[str, Any]) -> str:
    """What an ``MLmodel`` file's ``pytorch`` flavour holds, for ``UnsafeModelError``."""
    form = pytorch_flavor.get("serialization_format") or "pickle"
    data = pytorch_flavor.get("model_data", "data")
    return f"a pickled PyTorch model (MLflow's pytorch flavour, {form} format in {data}/)"


def model_flavors(local: Path, uri: str) -> dict[str, Any]:
    """The ``flavors`` of the ``MLmodel`` file in (downloaded) model folder ``local``.

    Raises:
        ValueError: no ``MLmodel`` file, or one that lists no flavors (names ``uri``).
    """
    mlmodel = local / MLMODEL_FILE
    if not mlmodel.is_file():
        raise ValueError(f"cannot load model {uri}: no MLmodel file in it")
    flavors = (yaml.safe_load(mlmodel.read_text(encoding="utf-8")) or {}).get("flavors")
    if not isinstance(flavors, dict):
        raise ValueError(f"cannot load model {uri}: its MLmodel file lists no flavors")
    return flavors
