"""Model folders (the DVC output ``models/latest/``) and loading a model from a folder or a URI.

A model folder holds ``weights.pt`` (the ``state_dict``, loaded with ``weights_only=True``) and
``config.yaml`` (``model:`` = the :class:`~girml.config.ModelConfig`, plus whatever the trainer
adds: train config, stats; and ``weights_sha256``). Both are functions of the config and the data
only, so the same training reproduces them byte for byte: what differs between runs (timings,
hardware, MLflow run and version) is kept in the train stage's ``metrics/train.json`` under
``run`` (:func:`training_run`). Registry URIs (``models:/...``, ``runs:/...``) go through
:mod:`girml.tracking.mlflow`, imported only when one is used so that folder-only callers do not
pay for importing MLflow.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from pydantic import BaseModel
from torch import nn

from girml.config import ConfigError, ModelConfig, parse_section
from girml.errors import ServiceUnreachable, UnsafeModelError, probe_mlflow
from girml.hashing import file_digest
from girml.imageio import swap_dir
from girml.models import build_model
from girml.models.shapes import check_shapes, planned_shapes, read_torch_weights, weight_shapes
from girml.paths import MODEL_DIR, RELEASE_DIR
from girml.urls import mask_text, mask_url

WEIGHTS_FILE = "weights.pt"
CONFIG_FILE = "config.yaml"
# files that torch.save or pickle wrote: what load_model refuses as a bare file
PICKLE_SUFFIXES = frozenset({".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin"})
# config.yaml keys written by save_model_dir itself
_RESERVED = ("model", "weights_sha256")
DEFAULT_DIR = MODEL_DIR
# a scheme of 2+ letters, so that a Windows drive letter is not a URI
URI_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/")


def _plain(value: Any) -> Any:
    """Turn configs, tuples, numpy scalars and paths into YAML-safe builtins."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def save_model_dir(
    model: nn.Module,
    model_cfg: ModelConfig,
    out_dir: Path,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``weights.pt`` and ``config.yaml`` to ``out_dir``, replacing the folder as a whole.

    Both files are written into a temporary folder beside ``out_dir`` which then takes its
    place, so readers never see a half-written model. Anything else in ``out_dir`` is removed.

    Args:
        model: the network built from ``model_cfg`` (any device; weights are saved on the CPU).
        model_cfg: its architecture config, stored as ``model:``.
        extra: more top-level ``config.yaml`` sections (e.g. ``train``, ``stats``); pydantic
            configs, tuples, numpy scalars and paths are converted. ``model`` and
            ``weights_sha256`` (the sha256 of ``weights.pt``, added last) are reserved. Keep
            run-specific values (timings, hardware, run ids) out: the folder is then
            byte-identical for the same config and data.

    Returns:
        ``out_dir``.
    """
    extra = dict(extra or {})
    reserved = [key for key in _RESERVED if key in extra]
    if reserved:
        raise ValueError(f"extra must not contain {reserved}: save_model_dir writes them")
    config = {"model": model_cfg.model_dump(mode="json"), **_plain(extra)}
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.with_name(f".{out_dir.name}.{uuid.uuid4().hex}.tmp")
    tmp.mkdir()
    try:
        state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
        torch.save(state, tmp / WEIGHTS_FILE)
        config["weights_sha256"] = file_digest(tmp / WEIGHTS_FILE)
        text = yaml.safe_dump(config, sort_keys=False)
        (tmp / CONFIG_FILE).write_text(text, encoding="utf-8")
        swap_dir(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


@dataclass(frozen=True)
class TrainingRun:
    """What the training run that produced a model folder recorded, beyond config and weights.

    Attributes:
        source: the file it was read from (``metrics/train.json`` or, for folders written
            before it moved there, the folder's ``config.yaml``).
        mlflow_run_id, registered_version: the MLflow run and ``gir-restorer`` version.
        hardware: what trained it (``girml.stages.train.hardware``).
        steps, train_seconds, samples_per_second: from the run's metrics.
    """

    source: Path
    mlflow_run_id: str | None = None
    registered_version: int | None = None
    hardware: str | None = None
    steps: int | None = None
    train_seconds: float | None = None
    samples_per_second: float | None = None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def training_run(model_dir: str | os.PathLike, train_metrics: Path | None = None) -> TrainingRun:
    """The run record of model folder ``model_dir``: ``run`` in ``train_metrics``, or the folder's.

    ``train_metrics`` (the train stage's ``metrics/train.json``) describes the folder only when
    its ``run.weights_sha256`` is the folder's ``weights_sha256``; otherwise (another folder, an
    older folder, no such file) the folder's own ``config.yaml`` is read, where older versions
    of ``girml train`` wrote ``mlflow``, ``hardware`` and ``metrics``. Missing keys stay None.

    Raises:
        FileNotFoundError: no ``config.yaml`` in ``model_dir``.
        ValueError: ``config.yaml`` or ``train_metrics`` cannot be parsed.
    """
    config = read_model_config(model_dir)
    sha = config.get("weights_sha256")
    if sha and train_metrics is not None and Path(train_metrics).is_file():
        try:
            metrics = json.loads(Path(train_metrics).read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"{train_metrics}: not valid JSON ({exc})") from None
        run = _mapping(_mapping(metrics).get("run"))
        if run.get("weights_sha256") == sha:
            return _training_run(
                Path(train_metrics),
                run_id=run.get("mlflow_run_id"),
                version=run.get("registered_version"),
                hardware=run.get("hardware"),
                metrics={**metrics, "samples_per_second": run.get("samples_per_second")},
            )
    info = _mapping(config.get("mlflow"))
    return _training_run(
        Path(model_dir) / CONFIG_FILE,
        run_id=info.get("run_id"),
        version=info.get("registered_version"),
        hardware=config.get("hardware"),
        metrics=_mapping(config.get("metrics")),
    )


def _training_run(
    source: Path, run_id: Any, version: Any, hardware: Any, metrics: Mapping[str, Any]
) -> TrainingRun:
    def number(key: str) -> float | None:
        value = metrics.get(key)
        return float(value) if isinstance(value, int | float) else None

    steps = number("steps")
    return TrainingRun(
        source=source,
        mlflow_run_id=None if run_id is None else str(run_id),
        registered_version=None if version is None else int(version),
        hardware=None if hardware is None else str(hardware),
        steps=None if steps is None else int(steps),
        train_seconds=number("train_seconds"),
        samples_per_second=number("samples_per_second"),
    )


def read_model_config(path: str | os.PathLike) -> dict[str, Any]:
    """The whole ``config.yaml`` of model folder ``path`` (``model`` plus the trainer's extras).

    Raises:
        FileNotFoundError: the folder or its ``config.yaml`` does not exist.
        ValueError: the file is not YAML or has no ``model`` mapping.
    """
    config_path = Path(path) / CONFIG_FILE
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path} not found")
    try:
        raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ValueError(f"{config_path}: not valid YAML ({exc})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("model"), dict):
        raise ValueError(f"{config_path}: needs a 'model' mapping at the top level")
    return raw


def parse_model_config(model_section: Mapping[str, Any], config_path: Path) -> ModelConfig:
    """Validate a folder's ``model:`` section, its bounds included (:mod:`girml.config_model`).

    Raises:
        girml.config.ConfigError: one line naming the file and every bad key, e.g.
            ``m/config.yaml: invalid config: model.width: Input should be less than or equal
            to 256 (got 12000)``.
    """
    try:
        return parse_section(model_section, "model", ModelConfig, source=str(config_path))
    except ConfigError as exc:  # parse_section's "<file>: invalid config\n  <key>: ..." lines
        head, *keys = str(exc).split("\n  ")
        raise ConfigError(f"{head}: {'; '.join(keys)}" if keys else head) from None


def build_from_config(
    model_section: Mapping[str, Any], config_path: Path, weights: Path | None = None
) -> nn.Module:
    """Build the network a folder's ``model:`` section describes (weights not loaded).

    Nothing large is allocated before three checks (:mod:`girml.models.shapes`): the section's
    bounds, the size of the network built on the ``meta`` device, and, with ``weights``, the
    shape of every tensor the file declares (a safetensors header; a mapped ``weights.pt``).

    Raises:
        girml.config.ConfigError: the section does not validate, or the network would be too
            large (one line naming the file).
        ValueError: an unknown architecture, or weights that do not fit the config (one line
            naming ``config_path`` and the weights file).
        girml.errors.UnsafeModelError: a ``weights.pt`` that holds pickled Python objects.
    """
    model_cfg = parse_model_config(model_section, config_path)
    try:
        planned = planned_shapes(model_cfg, config_path)
    except KeyError as exc:
        raise ValueError(f"{config_path}: {exc.args[0]}") from None
    if weights is not None:
        check_shapes(weight_shapes(weights), planned, weights, config_path)
    return build_model(model_cfg)


def weights_mismatch(weights: Path, config_path: Path, exc: BaseException) -> ValueError:
    """The error for weights that are corrupt or do not fit their config, naming both files."""
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return ValueError(f"{weights}: corrupt or does not match {config_path} ({reason})")


def load_model_dir(path: str | os.PathLike) -> nn.Module:
    """Build the network described by a model folder and load its weights (CPU, eval mode).

    ``weights.pt`` is read with torch's weights-only unpickler: tensors and plain containers,
    never code. Its shapes are checked against the config before the network is built.

    Raises:
        FileNotFoundError: the folder, ``weights.pt`` or ``config.yaml`` is missing; the message
            names the path.
        ValueError: the config is invalid or the weights are corrupt or do not fit it.
        girml.errors.UnsafeModelError: ``weights.pt`` holds pickled Python objects.
    """
    folder = Path(path)
    if folder.is_file() and folder.suffix in PICKLE_SUFFIXES:
        raise UnsafeModelError(str(folder), "a PyTorch file (torch.save pickles Python objects)")
    if not folder.is_dir():
        raise FileNotFoundError(
            f"model folder {folder} not found: run `dvc repro train` or pass --model"
        )
    missing = [name for name in (WEIGHTS_FILE, CONFIG_FILE) if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"model folder {folder} is missing {', '.join(missing)}")
    config_path = folder / CONFIG_FILE
    weights = folder / WEIGHTS_FILE
    model = build_from_config(read_model_config(folder)["model"], config_path, weights)
    try:
        model.load_state_dict(read_torch_weights(weights))
    except RuntimeError as exc:
        raise weights_mismatch(weights, config_path, exc) from None
    return model.eval()


def load_model(uri_or_path: str, name: str | None = None) -> nn.Module:
    """Load a model from a folder, a local MLflow model or a registry URI (CPU, eval mode).

    Nothing is ever unpickled: tensors are read with ``safetensors`` or torch's weights-only
    unpickler, configs with ``yaml.safe_load``, and the network is rebuilt from its config.

    Args:
        uri_or_path: a model folder (:func:`save_model_dir`), a release folder
            (``model.safetensors`` + ``config.yaml``, see :mod:`girml.models.release`), a folder
            holding an ``MLmodel`` file, or an MLflow URI: ``models:/<name>@<alias>``,
            ``models:/<name>/<version>``, ``runs:/<run id>/<artifact name>``.
        name: what a refusal calls the model (default ``uri_or_path``), e.g. the URI that a
            temporary folder was downloaded from.

    Raises:
        FileNotFoundError: a folder that does not exist or lacks files (the message names it).
        ValueError: an unloadable URI or a corrupt folder.
        girml.errors.UnsafeModelError: a pickled model (an MLflow ``pytorch`` flavour model, a
            ``.pt``/``.pth`` file, a ``weights.pt`` holding Python objects): refused in one line
            that says how to convert it (``girml convert-model``).
    """
    from girml.models.release import is_release_dir, load_release

    path = Path(uri_or_path)
    try:
        if URI_PATTERN.match(uri_or_path) or (path / "MLmodel").is_file():
            from girml.tracking.mlflow import load_logged_model

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
    from girml.models.release import WEIGHTS_FILE as RELEASE_WEIGHTS
    from girml.models.release import is_release_dir

    path = Path(uri_or_path)
    if URI_PATTERN.match(uri_or_path) or (path / "MLmodel").is_file():
        return None
    if is_release_dir(path):
        return path / RELEASE_WEIGHTS
    return path / WEIGHTS_FILE if (path / WEIGHTS_FILE).is_file() else None


@dataclass(frozen=True)
class ModelChoice:
    """The model ``girml restore`` uses without ``--model``, and why.

    Attributes:
        uri: what to pass to :func:`load_model`.
        kind: ``champion``, ``latest`` or ``release``.
        reason: for the champion, which version it is and why it is champion; for the others,
            why the ones before it in that order were not used.
    """

    uri: str
    kind: str
    reason: str = ""

    def describe(self) -> str:
        """E.g. ``models/release (release: no MLflow store, so no champion; no models/latest)``."""
        return f"{self.uri} ({self.kind}{': ' + self.reason if self.reason else ''})"


def _champion(project_root: Path) -> tuple[str | None, str]:
    """The champion URI and which version it is and why it is champion; or None and why there
    is none: no store, no alias, a tracking server that does not answer, or a store that cannot
    be read. Every URL in the reason is masked.

    A tracking server is first asked for ``/health`` as the stages do
    (:func:`girml.errors.probe_mlflow`: two tries, 3 s each), so one that accepts connections
    but never answers costs seconds, not MLflow's minutes of retries.
    """
    try:
        from girml.tracking.mlflow import (
            CHAMPION,
            REGISTERED_MODEL,
            alias_uri,
            store_exists,
            tracking_uri,
        )
        from girml.tracking.registry import champion_info

        if not store_exists(project_root):
            return None, "no MLflow store, so no champion"
        probe_mlflow(tracking_uri(project_root))
        uri = alias_uri(project_root)
        info = champion_info() if uri else None
    except ServiceUnreachable as exc:  # already one line, masked
        return None, f"{exc}, so no champion"
    # Restoring must work without a usable registry (a fresh clone, a broken or unreachable
    # store): whatever MLflow raises, fall back and say why.
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return None, mask_text(f"MLflow registry unreadable ({reason}), so no champion")
    if uri is None:
        return None, f"no {REGISTERED_MODEL}@{CHAMPION} in the registry"
    return uri, info.describe() if info is not None else ""


def choose_default_model(
    local_dir: Path = DEFAULT_DIR,
    project_root: Path = Path("."),
    release_dir: Path | None = None,
) -> ModelChoice:
    """What ``girml restore`` uses without ``--model``: the first that exists of
    ``models:/gir-restorer@champion`` (in the project's MLflow registry), ``local_dir`` (a
    trained model folder) and the shipped release folder.

    Args:
        local_dir: the train stage's model folder.
        project_root: where the default MLflow store lives.
        release_dir: the release folder; default ``<project_root>/models/release``.

    Raises:
        FileNotFoundError: none exists; the message says why each was skipped, and to run
            ``dvc repro train`` or pass ``--model``.
    """
    release_dir = project_root / RELEASE_DIR if release_dir is None else release_dir
    uri, why_not = _champion(project_root)
    if uri is not None:
        return ModelChoice(uri, "champion", why_not)
    if (local_dir / WEIGHTS_FILE).is_file():
        return ModelChoice(str(local_dir), "latest", why_not)
    from girml.models.release import is_release_dir

    if is_release_dir(release_dir):
        return ModelChoice(str(release_dir), "release", f"{why_not}; no {local_dir}")
    from girml.tracking.mlflow import tracking_uri

    raise FileNotFoundError(
        f"no model: {why_not} (tracking store {mask_url(tracking_uri(project_root))}); {local_dir} "
        f"holds no {WEIGHTS_FILE}; {release_dir} is not a release folder. Run `dvc repro "
        "train` or pass --model"
    )


def default_model_uri(
    local_dir: Path = DEFAULT_DIR, project_root: Path = Path("."), release_dir: Path | None = None
) -> str:
    """The ``uri`` of :func:`choose_default_model` (champion, else ``local_dir``, else release).

    Raises:
        FileNotFoundError: none exists; the message says to run ``dvc repro train`` or pass
            ``--model``.
    """
    return choose_default_model(local_dir, project_root, release_dir).uri
