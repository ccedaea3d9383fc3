"""What a training run logs to MLflow: its configs when it starts, its result when it ends, and
the description of the version it registers.

The ``train`` stage opens the run (:func:`girml.tracking.runs.start_run`) around
:func:`girml.training.loop.train`, streams the loop's metrics into it (``on_log`` /
``on_validate`` / ``on_curve`` = :func:`girml.tracking.logs.log_metrics`) and calls these two
functions; each logs to MLflow's active run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from girml.config import ModelConfig, TrainConfig
from girml.tracking.logs import log_curves, log_metrics, log_params_flat
from girml.training.loop import TrainResult

# a family whose validation PSNR-Y falls by more than this is listed as harmed
HARM_DB = 0.05


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


def version_description(
    result: TrainResult,
    data: Mapping[str, tuple[int, int]],
    *,
    hardware: str,
    profile: str | None = None,
    init_from: str | None = None,
    top: int = 3,
) -> str:
    """A registered version's description (markdown): what it was trained on and how, and what
    its validation says (the numbers ``metrics/train.json`` records).

    Args:
        result: what :func:`~girml.training.loop.train` returned.
        data: split -> ``(pairs, source photos)`` of ``data/pairs``, in the order to list them.
        hardware: what trained it (:func:`girml.stages.train.hardware`).
        profile: the profile laid over ``params.yaml``, when known.
        init_from: the weights it was fine-tuned from, or None (trained from scratch).
        top: how many of the most improved families to name.
    """
    m = result.metrics
    start = f"fine-tuned from `{init_from}`" if init_from else "trained from scratch"
    lines = [
        f"Trained by the `train` stage ({start}): {int(m['steps'])} steps in "
        f"{m['train_seconds']:.0f} s on {hardware}.",
        "",
        "- **Data**: "
        + ", ".join(
            f"{pairs} {split} pairs from {photos} photos" for split, (pairs, photos) in data.items()
        )
        + " (`data/pairs`; its md5 is the `dvc.data/pairs` tag).",
        f"- **Profile**: `{profile}`." if profile else "- **Profile**: not recorded.",
        f"- **Validation** (PSNR-Y, kept weights): {m['val.psnr_y_input']:.2f} -> "
        f"{m['val.psnr_y_model']:.2f} dB ({m['val.psnr_gain']:+.2f}).",
    ]
    gains = sorted(
        ((v["psnr_y_model"] - v["psnr_y_input"], fam) for fam, v in result.per_family.items()),
        reverse=True,
    )
    best = [f"{fam} {gain:+.2f}" for gain, fam in gains[:top] if gain > 0]
    lines.append(f"- **Largest gains**: {', '.join(best)} dB." if best else "- **Gains**: none.")
    harmed = [f"{fam} {gain:+.2f}" for gain, fam in reversed(gains) if gain < -HARM_DB]
    lines.append(
        f"- **Harm**: {', '.join(harmed)} dB."
        if harmed
        else f"- **Harm**: no family loses more than {HARM_DB} dB."
    )
    return "\n".join(lines) + "\n"
