"""What a run logs while it is active: flattened params, metrics, and metric curves.

Params are flattened to dotted keys (``train.steps``) and cut to :data:`PARAM_VALUE_LIMIT`
characters; curves are logged as a CSV and a PNG plot. Each function logs to MLflow's active
run (:func:`girml.tracking.runs.start_run`).
"""

from __future__ import annotations

import csv
import json
import math
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import mlflow
from matplotlib.figure import Figure
from pydantic import BaseModel

PARAM_VALUE_LIMIT = 500  # the historical MLflow limit; servers older than 2.x still enforce it


def _param_value(value: Any) -> str:
    text = value if isinstance(value, str) else None
    if text is None:
        plain = isinstance(value, list | tuple | Mapping)
        text = json.dumps(value, default=str) if plain else str(value)
    if len(text) > PARAM_VALUE_LIMIT:
        text = text[: PARAM_VALUE_LIMIT - 3] + "..."
    return text


def flatten_params(params: Mapping[str, Any] | BaseModel, prefix: str = "") -> dict[str, str]:
    """Flatten nested mappings (and pydantic configs) to ``{"a.b.c": "value"}`` strings.

    Lists become JSON; every value is cut to :data:`PARAM_VALUE_LIMIT` characters (ending in
    ``...`` when cut).
    """
    if isinstance(params, BaseModel):
        params = params.model_dump(mode="json")
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json")
        if isinstance(value, Mapping) and value:
            flat.update(flatten_params(value, f"{name}."))
        else:
            flat[name] = _param_value(value)
    return flat


def log_params_flat(params: Mapping[str, Any] | BaseModel) -> dict[str, str]:
    """Log :func:`flatten_params` of ``params`` to the active run; returns what was logged."""
    flat = flatten_params(params)
    mlflow.log_params(flat)
    return flat


def log_metrics(step: int, metrics: Mapping[str, float]) -> None:
    """Log scalar ``metrics`` (names may contain dots and slashes) at ``step`` >= 0."""
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    mlflow.log_metrics({name: float(value) for name, value in metrics.items()}, step=step)


def _check_artifact_name(path_name: str) -> PurePosixPath:
    path = PurePosixPath(path_name)
    if not path_name or path.is_absolute() or ".." in path.parts:
        raise ValueError(f"path_name must be a relative artifact path, got {path_name!r}")
    return path


def log_curves(history: Sequence[Mapping[str, float]], path_name: str, x_key: str = "step") -> None:
    """Log a metric history as ``<path_name>.csv`` and a ``<path_name>.png`` plot (artifacts).

    Rows may have different metrics (e.g. validation every N steps); missing cells are empty in
    the CSV and skipped in the plot, which has one panel per metric against ``x_key``.

    Args:
        history: rows like ``{"step": 100, "loss": 0.05, "val/psnr": 27.1}``.
        path_name: artifact path without suffix, e.g. ``"curves/train"``.
        x_key: the column every row must have, used as the x axis.
    """
    artifact = _check_artifact_name(path_name)
    if not history:
        raise ValueError("history is empty")
    columns = [x_key]
    for i, row in enumerate(history):
        if x_key not in row:
            raise ValueError(f"history[{i}] has no {x_key!r}: {dict(row)}")
        columns.extend(key for key in row if key not in columns)
    metrics = columns[1:]
    with tempfile.TemporaryDirectory(prefix="girml-curves-") as tmp:
        csv_path = Path(tmp) / f"{artifact.name}.csv"
        with csv_path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns, restval="")
            writer.writeheader()
            writer.writerows(history)

        ncols = min(3, max(1, len(metrics)))
        nrows = max(1, math.ceil(len(metrics) / ncols))
        fig = Figure(figsize=(4.5 * ncols, 3.2 * nrows), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        for ax, metric in zip(axes, metrics, strict=False):
            points = [(row[x_key], row[metric]) for row in history if metric in row]
            ax.plot(*zip(*points, strict=True), marker="." if len(points) < 50 else None)
            ax.set_title(metric)
            ax.set_xlabel(x_key)
            ax.grid(alpha=0.3)
        for ax in axes[len(metrics) :]:
            ax.set_visible(False)
        png_path = csv_path.with_suffix(".png")
        fig.savefig(png_path, dpi=100)  # Figure without pyplot renders with Agg

        folder = str(artifact.parent) if str(artifact.parent) != "." else None
        mlflow.log_artifact(str(csv_path), artifact_path=folder)
        mlflow.log_artifact(str(png_path), artifact_path=folder)
