"""What a training run logs to MLflow: its configs when it starts, its result when it ends.

The ``train`` stage opens the run (:func:`girml.tracking.runs.start_run`) around
:func:`girml.training.loop.train`, streams the loop's metrics into it (``on_log`` /
``on_validate`` = :func:`girml.tracking.logs.log_metrics`) and calls these two functions; each
logs to MLflow's active run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from girml.config import ModelConfig, TrainConfig
from girml.tracking.logs import log_curves, log_metrics, log_params_flat
from girml.training.loop import TrainResult


def log_train_start(model_cfg: ModelConfig, cfg: TrainConfig) -> None:
    """Log the ``model`` and ``train`` sections as flattened params (``model.width``, ...)."""
    log_params_flat({"model": model_cfg, "train": cfg})


def final_metrics(result: TrainResult, stats: Mapping[str, Any]) -> dict[str, float]:
    """The metrics logged when training ends: the loop's final metrics, the validation gain per
    family (``val.psnr_gain.<family>``, ``+`` written ``_``), the parameter count and the FLOPs
    on a 256x256 input.

    Args:
        result: what :func:`~girml.training.loop.train` returned.
        stats: :func:`girml.models.model_stats` of ``result.model`` at 256x256.
    """
    per_family = {
        # MLflow metric names allow no "+": blur+noise -> blur_noise
        f"val.psnr_gain.{fam.replace('+', '_')}": v["psnr_y_model"] - v["psnr_y_input"]
        for fam, v in sorted(result.per_family.items())
    }
    return {
        **result.metrics,
        **per_family,
        "params": stats["params"],
        "flops_256": stats["flops"],
    }


def log_train_result(result: TrainResult, stats: Mapping[str, Any]) -> None:
    """Log :func:`final_metrics` at the last step, then the loop's history as the ``curves``
    artifacts (``curves.csv`` and ``curves.png``, :func:`~girml.tracking.logs.log_curves`).

    Args:
        result: what :func:`~girml.training.loop.train` returned.
        stats: :func:`girml.models.model_stats` of ``result.model`` at 256x256.
    """
    log_metrics(int(result.metrics["steps"]), final_metrics(result, stats))
    log_curves(result.history, "curves")
