"""What the training run behind a model folder recorded: its MLflow run, version and timings.

The model folder itself holds only what config and data determine (:mod:`.store`); the train
stage keeps the run-specific record in ``metrics/train.json`` under ``run``, matched to the
folder by ``weights_sha256``. Folders written by older versions of ``girml train`` hold it in
their own ``config.yaml``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from girml.artifacts.store import CONFIG_FILE, read_model_config


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


@dataclass(frozen=True)
class RegisteredModel:
    """Where the train stage registered a model folder (``run`` in ``metrics/train.json``)."""

    run_id: str
    version: int


def registered_model(model_dir: Path, train_metrics: Path | None = None) -> RegisteredModel:
    """The MLflow run and registered version of a model folder.

    Read from ``run.mlflow_run_id`` / ``run.registered_version`` of ``train_metrics`` (the
    train stage's ``metrics/train.json``) when it describes this folder's weights, else from
    ``mlflow`` in the folder's ``config.yaml`` (folders from older versions); see
    :func:`training_run`.

    Raises:
        FileNotFoundError: no ``config.yaml``.
        ValueError: neither file records them (the model was not trained by ``girml train``).
    """
    run = training_run(model_dir, train_metrics)
    if run.mlflow_run_id is None or run.registered_version is None:
        where = f"{train_metrics} (run) or " if train_metrics is not None else ""
        raise ValueError(
            f"{where}{Path(model_dir) / CONFIG_FILE} has no mlflow.run_id / "
            "mlflow.registered_version for these weights: evaluate a model trained and "
            "registered by `girml train`"
        )
    return RegisteredModel(run_id=run.mlflow_run_id, version=run.registered_version)
