"""Training the study's approaches (``study.approaches``) at equal compute (DVC stage
``approach@<name>``; :mod:`girml.evaluation.approaches` restores the benchmark with them).

Kinds (:class:`~girml.config.ApproachConfig`):

- ``unified``: one model for every degradation, the ``model`` section with the approach's
  overrides (``nafnet``, ``prompt_nafnet``, ``plain_cnn``), trained by
  :func:`girml.training.train` with the ``train`` section.
- ``specialists``: one model per training family (every family not held out), each trained on
  that family alone (:func:`girml.training.specialists.train_specialists`).
- ``routed``: a :class:`~girml.models.classifier.DegradationClassifier`
  (:mod:`girml.training.classifier`) that names one class per image; it routes to the
  specialists of the approach named by ``specialists``, trained by that approach.
- ``release``: the shipped ``models/release``, not trained.

Equal compute. The budget is the ``train`` section's run of the ``model`` section's network:
``train.steps x train.batch_size`` samples of ``F_ref`` forward FLOPs each (a
``train.patch_size`` square, :func:`girml.models.model_stats`). A unified approach whose network
costs ``F`` trains ``round(train.steps x F_ref / F)`` steps; the specialists share the budget,
``1/n`` of it each for ``n`` families. The routed approach uses those specialists and adds its
classifier (``study.classifier_steps``), whose FLOPs ``approach.json`` states.

Files. ``models/approaches/<name>/approach.json`` (:func:`write_approach`: kind, steps, FLOPs,
seconds, parameters) beside the trained weights: a model folder (unified), one model folder
per family (specialists) or :data:`CLASSIFIER_FILE` (routed). The approach stage writes them
from the :class:`TrainedApproach` that :func:`train_approach` returns.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from girml.config import (
    ApproachConfig,
    DegradationsConfig,
    ModelConfig,
    TrainConfig,
)
from girml.core.imageio import write_text
from girml.models import build_model, model_stats
from girml.models.classifier import DegradationClassifier
from girml.training.classifier import train_classifier
from girml.training.loop import train
from girml.training.specialists import default_specialist_families, train_specialists

log = logging.getLogger(__name__)

APPROACH_FILE = "approach.json"
CLASSIFIER_FILE = "classifier.safetensors"
# the kinds that train restoration networks (which start from train.init_from when it is set)
NETWORK_KINDS = ("unified", "specialists")


# --------------------------------------------------------------------------- compute


def approach_model_config(model_cfg: ModelConfig, approach: ApproachConfig) -> ModelConfig:
    """The ``model`` section with the approach's overrides (validated; errors name the key)."""
    return ModelConfig(**{**model_cfg.model_dump(), **approach.model})


def forward_flops(model_cfg: ModelConfig, patch_size: int) -> int:
    """Forward FLOPs of ``model_cfg``'s network on one ``patch_size`` square."""
    return model_stats(build_model(model_cfg), patch_size, patch_size)["flops"]


def matched_steps(steps: int, reference_flops: int, flops: int, share: int = 1) -> int:
    """Steps of a network of ``flops`` per sample that cost ``1/share`` of ``steps`` steps of
    the reference network (``reference_flops``); at least 1.

    Raises:
        ValueError: a non-positive FLOP count or share.
    """
    if reference_flops <= 0 or flops <= 0 or share < 1:
        raise ValueError(
            f"FLOPs must be > 0 and share >= 1, got {reference_flops}, {flops}, {share}"
        )
    return max(1, round(steps * reference_flops / flops / share))


def _tflop(steps: int, batch: int, flops: int) -> float:
    """Training TFLOPs: forward and backward (3x forward) per sample."""
    return 3 * steps * batch * flops / 1e12


def param_count(model: nn.Module) -> int:
    """Parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------- training


@dataclass(frozen=True)
class TrainedApproach:
    """One trained approach, before it is written.

    Attributes:
        record: what ``approach.json`` holds (see :func:`train_approach`).
        models: folder name -> network: ``model`` (unified) or one per family (specialists).
        model_cfg: the networks' architecture (None without networks).
        train_cfg: the networks' training run (its ``steps`` FLOP-matched; None without
            networks), stored beside each as ``train``.
        classifier: the routed approach's classifier, or None.
    """

    record: dict[str, Any]
    models: dict[str, nn.Module] = field(default_factory=dict)
    model_cfg: ModelConfig | None = None
    train_cfg: TrainConfig | None = None
    classifier: DegradationClassifier | None = None


def train_approach(
    approach: ApproachConfig,
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    spec: DegradationsConfig,
    pairs_dir: Path,
    work_dir: Path,
    classifier_steps: int,
    *,
    init: dict[str, torch.Tensor] | None = None,
) -> TrainedApproach:
    """Train one approach at the budget of the ``train`` section.

    Args:
        approach: the approach.
        model_cfg: the ``model`` section: the reference network of the budget.
        train_cfg: the ``train`` section: the budget and the recipe.
        spec: the degradation spec.
        pairs_dir: the synthesize stage's pairs (``train/``, ``val/``).
        work_dir: checkpoints (an interrupted training resumes there).
        classifier_steps: the routed classifier's steps.
        init: the weights of ``train_cfg.init_from``, loaded by the caller
            (:func:`girml.artifacts.loading.source_weights`), for the kinds of
            :data:`NETWORK_KINDS`: each of their networks starts from them. Given iff
            ``train_cfg.init_from`` is set and the kind trains networks.

    Returns:
        The networks and the record: ``kind``, ``budget_tflop``, and for trained kinds
        ``steps`` (per model), ``tflop`` (training compute), ``train_seconds``, ``params``,
        ``val_psnr_gain`` (unified), ``families`` (specialists), ``classes`` and
        ``val_accuracy`` (routed).
    """
    reference = forward_flops(model_cfg, train_cfg.patch_size)
    budget = _tflop(train_cfg.steps, train_cfg.batch_size, reference)
    record: dict[str, Any] = {"kind": approach.kind, "budget_tflop": round(budget, 3)}
    if approach.kind in NETWORK_KINDS:
        return _train_networks(
            approach, model_cfg, train_cfg, spec, pairs_dir, work_dir, reference, record, init
        )
    if approach.kind == "routed":
        return _train_router(train_cfg, spec, pairs_dir, classifier_steps, record)
    return TrainedApproach(record)


def _train_networks(
    approach: ApproachConfig,
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    spec: DegradationsConfig,
    pairs_dir: Path,
    work_dir: Path,
    reference: int,
    record: dict[str, Any],
    init: dict[str, torch.Tensor] | None,
) -> TrainedApproach:
    """``unified``: one network on every degradation (folder ``model``); ``specialists``: one
    per training family (folder ``<family>``), the budget split evenly between them; each
    starts from ``init`` when given."""
    cfg = approach_model_config(model_cfg, approach)
    flops = forward_flops(cfg, train_cfg.patch_size)
    families = default_specialist_families(spec) if approach.kind == "specialists" else []
    steps = matched_steps(train_cfg.steps, reference, flops, share=max(1, len(families)))
    run_cfg = train_cfg.model_copy(update={"steps": steps})
    record = {**record, "model": cfg.type, "steps": steps}
    log.info("training %s (%s) for %d steps: FLOP-matched", approach.kind, cfg.type, steps)
    start = time.perf_counter()
    if families:
        models = train_specialists(cfg, run_cfg, spec, families, pairs_dir, work_dir, init=init)
        record["families"] = families
    else:
        result = train(cfg, run_cfg, pairs_dir, work_dir, spec=spec, init=init)
        models = {"model": result.model}
        record["val_psnr_gain"] = round(result.metrics["val.psnr_gain"], 4)
    record.update(
        tflop=round(len(models) * _tflop(steps, train_cfg.batch_size, flops), 3),
        train_seconds=round(time.perf_counter() - start, 1),
        params=sum(param_count(model) for model in models.values()),
    )
    return TrainedApproach(record, models, cfg, run_cfg)


def _train_router(
    train_cfg: TrainConfig,
    spec: DegradationsConfig,
    pairs_dir: Path,
    steps: int,
    record: dict[str, Any],
) -> TrainedApproach:
    """``routed``: the degradation classifier (:func:`~girml.training.classifier.train_classifier`)
    and its classes, steps, TFLOPs, seconds, parameters and validation accuracy."""
    start = time.perf_counter()
    model, classes, accuracy = train_classifier(train_cfg, spec, pairs_dir, steps)
    flops = model_stats(model, train_cfg.patch_size, train_cfg.patch_size)["flops"]
    record = {
        **record,
        "classes": classes,
        "classifier_steps": steps,
        "classifier_tflop": round(_tflop(steps, train_cfg.batch_size, flops), 4),
        "train_seconds": round(time.perf_counter() - start, 1),
        "classifier_params": param_count(model),
        "val_accuracy": None if math.isnan(accuracy) else round(accuracy, 4),
    }
    return TrainedApproach(record, classifier=model)


# --------------------------------------------------------------------------- files


def write_approach(folder: Path, record: dict[str, Any]) -> None:
    """Write ``record`` as the folder's ``approach.json``."""
    write_text(Path(folder) / APPROACH_FILE, json.dumps(record, indent=2) + "\n")


def read_approach(folder: Path) -> dict[str, Any]:
    """``approach.json`` of a trained approach.

    Raises:
        FileNotFoundError: the folder has none (the message says which stage writes it).
    """
    path = Path(folder) / APPROACH_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `dvc repro approach@{Path(folder).name}`")
    return json.loads(path.read_text(encoding="utf-8"))
