"""``girml convert-model``: turn a pickled model that the user trusts into a model folder, once.

girml never unpickles a model when it loads one: :func:`girml.artifacts.loading.load_model` refuses
pickles with :class:`~girml.core.errors.UnsafeModelError`, because unpickling runs whatever code the
file's author put in it. Models registered by older girml versions are pickled modules
(MLflow's ``pytorch`` flavour), and checkpoints often come as ``torch.save`` files. This module
is the one place that unpickles, on explicit request only (``trusted=True``, the command's
``--i-trust-this-file``).

A source is one of:

- an MLflow ``pytorch`` flavour model (pickle format): a folder holding ``MLmodel``, or a
  ``models:/`` or ``runs:/`` URI (the project's store, or ``MLFLOW_TRACKING_URI``);
- a model folder (or a registered girml version) whose ``weights.pt`` holds pickled objects;
- a file that ``torch.save`` wrote (``.pt``, ``.pth``, ...).

Its pickle must hold an ``nn.Module`` or a state dict (``{name: tensor}``, or a checkpoint
``{"state_dict": {...}}``). The architecture comes from ``config`` (a YAML file with a
``model:`` section: a ``params.yaml`` or a model folder's ``config.yaml``), else from the
source's own ``config.yaml``, else from its MLflow run's ``model.*`` params. The tensors must be
exactly those that config builds; the result (:func:`girml.artifacts.store.save_model_dir`:
``weights.pt`` + ``config.yaml`` with ``converted_from``) is loaded back with the safe loader and
compared tensor for tensor before :func:`convert_model` returns.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from girml.artifacts.loading import URI_PATTERN
from girml.artifacts.store import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    load_model_dir,
    parse_model_config,
    save_model_dir,
)
from girml.config import ModelConfig
from girml.core.hashing import file_digest
from girml.core.urls import mask_text
from girml.models import build_model
from girml.models.shapes import check_shapes, planned_shapes

MLMODEL_FILE = "MLmodel"
PYTORCH_MODEL_FILE = "model.pth"  # what MLflow's pytorch flavour pickles into its data folder


@dataclass(frozen=True)
class Converted:
    """What :func:`convert_model` wrote and read.

    Attributes:
        out: the model folder written.
        pickled: the file that was unpickled, relative to the source (or its name).
        sha256: that file's sha256.
        config_from: where the architecture came from.
        tensors: the number of tensors written.
    """

    out: Path
    pickled: str
    sha256: str
    config_from: str
    tensors: int


@dataclass(frozen=True)
class _Pickled:
    """The file to unpickle within a (downloaded) source, and its girml folder if it has one."""

    file: Path
    name: str
    folder: Path | None = None


def convert_model(
    source: str,
    out: Path,
    *,
    trusted: bool,
    config: Path | None = None,
    force: bool = False,
    project_root: Path = Path("."),
) -> Converted:
    """Unpickle a trusted model ``source`` and write it as a model folder ``out``.

    THIS RUNS CODE FROM ``source``: unpickling executes whatever the pickle asks for. Call it
    only on files you trust.

    Args:
        source: see the module docstring.
        out: the model folder to write (replaced as a whole).
        trusted: must be True: the caller vouches for ``source``.
        config: a YAML file with a ``model:`` section describing the architecture; default:
            the source's ``config.yaml``, else its MLflow run's ``model.*`` params.
        force: replace a non-empty ``out``.
        project_root: where the default MLflow store lives (for URIs).

    Returns:
        :class:`Converted`.

    Raises:
        ValueError: not trusted, ``out`` not empty, nothing pickled found, no architecture, or
            tensors that do not fit it (one line naming the source).
        girml.config.ConfigError: the architecture does not validate or is too large.
    """
    if not trusted:
        raise ValueError(
            f"converting {source} unpickles it, which runs any code in it: confirm that you "
            "trust it (--i-trust-this-file)"
        )
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise ValueError(f"{out} exists and is not an empty folder: pass --force to replace it")
    with tempfile.TemporaryDirectory(prefix="girml-convert-") as tmp:
        local = _local(source, Path(tmp), project_root)
        pickled = _find_pickled(local, source)
        model_cfg, config_from = _architecture(config, pickled.folder, source, project_root)
        digest = file_digest(pickled.file)
        state = _state_dict(_unpickle(pickled.file, source), source)
    planned = planned_shapes(model_cfg, config_from)
    found = {name: tuple(tensor.shape) for name, tensor in state.items()}
    label = source if Path(source).is_file() else f"{source} ({pickled.name})"
    check_shapes(found, planned, Path(label), Path(config_from))
    model = build_model(model_cfg)
    reference = model.state_dict()
    model.load_state_dict({name: t.to(reference[name].dtype) for name, t in state.items()})
    origin = {"source": mask_text(source), "file": pickled.name, "sha256": digest}
    save_model_dir(model.eval(), model_cfg, out, extra={"converted_from": origin})
    _verify(load_model_dir(out), model, out)
    return Converted(out, pickled.name, digest, config_from, len(state))


def _local(source: str, tmp: Path, project_root: Path) -> Path:
    """``source`` as a local path: a URI's artifacts are downloaded into ``tmp``."""
    if not URI_PATTERN.match(source):
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"{source} not found")
        return path
    from girml.tracking.logged_models import download_artifacts
    from girml.tracking.store import configure

    configure(project_root)
    return download_artifacts(source, tmp)


def _find_pickled(local: Path, source: str) -> _Pickled:
    """The pickle to read in ``local`` (see the module docstring for the forms)."""
    if local.is_file():
        return _Pickled(local, local.name)
    if (local / MLMODEL_FILE).is_file():
        from girml.tracking.logged_models import MODEL_ARTIFACT, model_flavors

        flavors = model_flavors(local, source)
        artifacts = flavors.get("python_function", {}).get("artifacts", {})
        if MODEL_ARTIFACT in artifacts:  # a girml version whose weights.pt holds objects
            inner = artifacts[MODEL_ARTIFACT]["path"]
            return _Pickled(local / inner / WEIGHTS_FILE, f"{inner}/{WEIGHTS_FILE}", local / inner)
        pytorch = flavors.get("pytorch")
        if not isinstance(pytorch, dict):
            raise ValueError(f"{source}: its MLmodel has no pytorch flavour ({sorted(flavors)})")
        form = pytorch.get("serialization_format") or "pickle"
        if form != "pickle":
            raise ValueError(f"{source}: a PyTorch model in {form} format; only pickles convert")
        name = f"{pytorch.get('model_data', 'data')}/{PYTORCH_MODEL_FILE}"
        return _Pickled(local / name, name)
    if (local / WEIGHTS_FILE).is_file():
        return _Pickled(local / WEIGHTS_FILE, WEIGHTS_FILE, local)
    raise ValueError(
        f"{source}: nothing to convert (no {MLMODEL_FILE}, no {WEIGHTS_FILE}; not a file)"
    )


def _unpickle(path: Path, source: str) -> Any:
    """The one unpickling in girml: of a file the user said they trust, on their request."""
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    # whatever the file's own code raises, or a corrupt pickle: one line naming the file
    except Exception as exc:
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        raise ValueError(f"{source}: cannot unpickle {path.name} ({reason})") from None


def _state_dict(loaded: Any, source: str) -> dict[str, torch.Tensor]:
    """The tensors of an unpickled module, state dict or ``{"state_dict": ...}`` checkpoint."""
    if isinstance(loaded, nn.Module):
        return {name: tensor.detach() for name, tensor in loaded.state_dict().items()}
    if isinstance(loaded, Mapping) and isinstance(loaded.get("state_dict"), Mapping):
        loaded = loaded["state_dict"]
    if (
        isinstance(loaded, Mapping)
        and loaded
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in loaded.items())
    ):
        return dict(loaded)
    raise ValueError(
        f"{source}: holds a {type(loaded).__name__}, not a PyTorch module or a state dict"
    )


def _architecture(
    config: Path | None, folder: Path | None, source: str, project_root: Path
) -> tuple[ModelConfig, str]:
    """The model config and where it came from: ``config``, the folder's, or the run's."""
    if config is not None:
        return _config_file(config), str(config)
    if folder is not None and (folder / CONFIG_FILE).is_file():
        local = not URI_PATTERN.match(source)  # else folder is a temporary download
        named = str(folder / CONFIG_FILE) if local else f"{source} ({CONFIG_FILE})"
        return _config_file(folder / CONFIG_FILE), named
    run_params = _run_params(source, project_root)
    if run_params is not None:
        from girml.artifacts.registered import model_config_from_params

        return model_config_from_params(run_params, source), f"{source} (run params)"
    raise ValueError(
        f"{source}: no architecture to rebuild it with: pass --config FILE, a YAML file with "
        "the model: section it was trained with (its params.yaml, or a model folder's "
        f"{CONFIG_FILE})"
    )


def _config_file(path: Path) -> ModelConfig:
    """The ``model:`` section of a YAML file (a params file or a model folder's config)."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read it as YAML ({exc})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("model"), dict):
        raise ValueError(f"{path}: needs a 'model' mapping at the top level")
    return parse_model_config(raw["model"], path)


def _run_params(source: str, project_root: Path) -> dict[str, str] | None:
    """The params of the MLflow run behind a ``models:/`` or ``runs:/`` URI; None otherwise."""
    if not URI_PATTERN.match(source):
        return None
    from girml.tracking.runs import run_record
    from girml.tracking.store import configure
    from girml.tracking.versions import model_version_of

    configure(project_root)
    if source.startswith("runs:/"):
        run_id = source[len("runs:/") :].strip("/").split("/", 1)[0]
    else:
        found = model_version_of(source)
        if found is None:
            return None
        run_id = found[1]
    return run_record(run_id).params


def _verify(loaded: nn.Module, model: nn.Module, out: Path) -> None:
    """The folder, read back by the safe loader, holds exactly the converted tensors."""
    expected = model.state_dict()
    for name, tensor in loaded.state_dict().items():
        if not torch.equal(tensor, expected[name]):
            raise ValueError(f"{out}: tensor {name!r} differs once read back; not converted")
