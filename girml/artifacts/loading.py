"""Loading a model by what a user names: a model folder, a release folder or an MLflow URI.

:func:`load_model` is the one entry point of ``girml restore --model``, ``girml pull``, outside
methods (``evaluate.methods``), ``train.init_from`` (:func:`source_weights`) and the benchmark
scripts. Registry URIs (``models:/...``, ``runs:/...``) go through
:mod:`girml.artifacts.registered`, imported only when one is used so that folder-only callers do
not pay for importing MLflow.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from girml.artifacts.onnx_runtime import is_onnx_file, load_onnx_model
from girml.artifacts.release import WEIGHTS_FILE as RELEASE_WEIGHTS
from girml.artifacts.release import is_release_dir, load_release
from girml.artifacts.store import WEIGHTS_FILE, load_model_dir
from girml.core.errors import UnsafeModelError
from girml.core.paths import RELEASE_DIR

# a scheme of 2+ letters, so that a Windows drive letter is not a URI
URI_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/")


def load_model(uri_or_path: str, name: str | None = None) -> nn.Module:
    """Load a model from a folder, a local MLflow model, a registry URI or an ``.onnx`` file
    (CPU, eval mode).

    Nothing is ever unpickled: tensors are read with ``safetensors`` or torch's weights-only
    unpickler, configs with ``yaml.safe_load``, and the network is rebuilt from its config.

    Args:
        uri_or_path: a model folder (:func:`~girml.artifacts.store.save_model_dir`), a release
            folder (``model.safetensors`` + ``config.yaml``, see :mod:`girml.artifacts.release`),
            a folder holding an ``MLmodel`` file, or an MLflow URI: ``models:/<name>@<alias>``,
            ``models:/<name>/<version>``, ``runs:/<run id>/<artifact name>``; or an ``.onnx``
            file written by ``girml export --format onnx``, run by onnxruntime
            (:class:`~girml.artifacts.onnx_runtime.OnnxRestorer`).
        name: what a refusal calls the model (default ``uri_or_path``), e.g. the URI that a
            temporary folder was downloaded from.

    Raises:
        FileNotFoundError: a folder or ``.onnx`` file that does not exist, or a folder that
            lacks files (the message names it).
        ValueError: an unloadable URI, a corrupt folder or a bad ``.onnx`` file.
        girml.core.errors.UnsafeModelError: a pickled model (an MLflow ``pytorch`` flavour model, a
            ``.pt``/``.pth`` file, a ``weights.pt`` holding Python objects): refused in one line
            that says how to convert it (``girml convert-model``).
    """
    path = Path(uri_or_path)
    if is_onnx_file(path) and not URI_PATTERN.match(uri_or_path):
        return load_onnx_model(path)  # imports onnxruntime
    try:
        if URI_PATTERN.match(uri_or_path) or (path / "MLmodel").is_file():
            from girml.artifacts.registered import load_logged_model  # imports MLflow

            return load_logged_model(uri_or_path)
        if is_release_dir(path):
            return load_release(path)
        return load_model_dir(path)
    except UnsafeModelError as exc:
        if name is None:
            raise
        raise UnsafeModelError(name, exc.what) from None


def weights_file(uri_or_path: str) -> Path | None:
    """The weights file :func:`load_model` reads for ``uri_or_path``, to hash what was scored.

    Returns:
        A release folder's ``model.safetensors`` or a model folder's ``weights.pt``; None for
        MLflow URIs and ``MLmodel`` folders (their weights are downloaded or nested).
    """
    path = Path(uri_or_path)
    if URI_PATTERN.match(uri_or_path) or (path / "MLmodel").is_file():
        return None
    if is_release_dir(path):
        return path / RELEASE_WEIGHTS
    return path / WEIGHTS_FILE if (path / WEIGHTS_FILE).is_file() else None


def source_weights(source: str) -> dict[str, torch.Tensor]:
    """The weights to start from for ``train.init_from``.

    Args:
        source: a model folder, a ``models:/`` or ``runs:/`` URI, or ``"release"`` for the
            shipped release model (``models/release/``).

    Raises:
        ValueError: the source cannot be loaded (the message names it).
    """
    uri = str(RELEASE_DIR) if source == "release" else source
    try:
        return load_model(uri).state_dict()
    except (FileNotFoundError, OSError, ValueError) as exc:
        raise ValueError(f"train.init_from={source!r}: cannot load it: {exc}") from exc
