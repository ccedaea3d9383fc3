"""Model folders (the DVC output ``models/latest/``): write, read and load one.

A model folder holds ``weights.pt`` (the ``state_dict``, loaded with ``weights_only=True``) and
``config.yaml`` (``model:`` = the :class:`~girml.config.ModelConfig`, plus whatever the trainer
adds: train config, stats; and ``weights_sha256``). Both are functions of the config and the data
only, so the same training reproduces them byte for byte: what differs between runs (timings,
hardware, MLflow run and version) is kept in the train stage's ``metrics/train.json`` under
``run`` (:func:`girml.artifacts.training_run.training_run`). Loading by URI, release folder or
MLflow model is :func:`girml.artifacts.loading.load_model`.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from pydantic import BaseModel
from torch import nn

from girml.config import ConfigError, ModelConfig, parse_section
from girml.core.errors import UnsafeModelError
from girml.core.hashing import file_digest
from girml.core.imageio import swap_dir
from girml.models import build_model
from girml.models.shapes import check_shapes, planned_shapes, read_torch_weights, weight_shapes

WEIGHTS_FILE = "weights.pt"
CONFIG_FILE = "config.yaml"
# files that torch.save or pickle wrote: what load_model refuses as a bare file
PICKLE_SUFFIXES = frozenset({".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin"})
# config.yaml keys written by save_model_dir itself
_RESERVED = ("model", "weights_sha256")


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
        girml.core.errors.UnsafeModelError: a ``weights.pt`` that holds pickled Python objects.
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
        girml.core.errors.UnsafeModelError: ``weights.pt`` holds pickled Python objects.
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
