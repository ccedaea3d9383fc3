"""One-family specialists: the same network trained on a single degradation family.

A specialist is the same architecture trained with the same :class:`~girml.config.TrainConfig`
(same steps, batch and schedule, so the same budget) on a single degradation family: every
training sample is a fresh recipe of that family at its in-distribution levels, applied on the
fly to the GT crops of the training pairs (``online_degradation_prob = 1``). They are the
reference a unified GIR model is measured against (with ``evaluate.specialists`` on, the
``specialists`` stage trains them and evaluate scores them as ``specialist:<family>``), and the
study's ``specialists`` approach, which the routed approach's
classifier (:mod:`girml.training.classifier`) learns to route between.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from girml.config import DegradationsConfig, HeldOut, ModelConfig, TrainConfig
from girml.training.loop import train

log = logging.getLogger(__name__)


def default_specialist_families(spec: DegradationsConfig) -> list[str]:
    """The families a specialist is trained for by default: every family not held out."""
    held = set(spec.held_out.families)
    return [family for family in spec.families if family not in held]


def specialist_spec(spec: DegradationsConfig, family: str) -> DegradationsConfig:
    """``spec`` restricted to one family: single-family recipes only, nothing held out.

    Args:
        spec: the full degradation spec.
        family: a family declared in ``spec``.

    Raises:
        ValueError: ``family`` is not declared in ``spec``.
    """
    if family not in spec.families:
        raise ValueError(f"unknown family {family!r}; declared: {sorted(spec.families)}")
    return DegradationsConfig(
        families={family: spec.families[family]},
        held_out=HeldOut(),
        train_composers={"single": 1.0},
        mixed=spec.mixed,
        second_order=spec.second_order,
    )


def specialist_train_config(train_cfg: TrainConfig) -> TrainConfig:
    """The run a specialist trains with: ``train_cfg`` with every sample degraded on the fly
    (``online_degradation_prob = 1``)."""
    return train_cfg.model_copy(update={"online_degradation_prob": 1.0})


def train_specialists(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    spec: DegradationsConfig,
    families: Sequence[str],
    pairs_dir: Path,
    work_dir: Path,
    *,
    init: dict[str, torch.Tensor] | None = None,
) -> dict[str, nn.Module]:
    """Train one specialist per family at the unified model's training budget.

    Each run is :func:`girml.training.loop.train` with :func:`specialist_train_config` and
    :func:`specialist_spec`, on the GT crops of ``pairs_dir/train``, validated
    on ``pairs_dir/val``, with checkpoints in ``work_dir/<family>`` (so an interrupted run
    resumes there); each starts from ``init`` when ``train_cfg.init_from`` names weights.

    Args:
        model_cfg: the unified model's architecture.
        train_cfg: the unified model's training config (steps, batch, schedule, seed).
        spec: the full degradation spec.
        families: the families to train specialists for (all checked before training).
        pairs_dir: the synthesize stage's pairs folder (``train/`` and ``val/``).
        work_dir: parent folder of the per-family checkpoint folders.
        init: the weights of ``train_cfg.init_from``, loaded by the caller
            (:func:`girml.artifacts.loading.source_weights`); given iff it is set.

    Returns:
        ``{family: model}``, each on the CPU in eval mode, in ``families`` order.

    Raises:
        ValueError: an unknown family or an empty ``families``, or ``init`` without
            ``train_cfg.init_from`` or the reverse (:func:`girml.training.init.check_init`).
    """
    if not families:
        raise ValueError("families is empty: name at least one family to train a specialist for")
    specs = {family: specialist_spec(spec, family) for family in families}
    cfg = specialist_train_config(train_cfg)
    models = {}
    for family, family_spec in specs.items():
        log.info("training the %s specialist (%d steps)", family, cfg.steps)
        result = train(
            model_cfg, cfg, Path(pairs_dir), Path(work_dir) / family, spec=family_spec, init=init
        )
        models[family] = result.model
    return models
