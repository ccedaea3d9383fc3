"""Stage ``approach@<name>``: train one approach of the study at the budget of the train section.

Writes models/approaches/<name>/ (approach.json beside the weights; girml/training/approaches.py
says what each kind trains). Checkpoints go to checkpoints/approaches/<name>/: a killed run
resumes there.
"""

from __future__ import annotations

from pathlib import Path

import torch

from girml.artifacts.loading import source_weights
from girml.artifacts.store import save_model_dir
from girml.config import ApproachConfig
from girml.core.cpu_isa import pin_cpu_isa
from girml.core.imageio import staged_dir
from girml.core.paths import APPROACH_CHECKPOINTS, APPROACHES_DIR, PAIRS_DIR
from girml.stages.contract import Echo, StageParams
from girml.training.approaches import (
    CLASSIFIER_FILE,
    NETWORK_KINDS,
    TrainedApproach,
    train_approach,
    write_approach,
)
from girml.training.classifier import save_classifier


def approach_of(reads: StageParams, name: str) -> ApproachConfig:
    """``study.approaches.<name>``, or :class:`StageFailed` naming the file and the approach."""
    hint = "profiles/study.yaml lists the study's approaches"
    return reads.entry("study.approaches", name, "approach", hint)


def run(params: Path, name: str, echo: Echo) -> None:
    """Train approach ``name`` into models/approaches/<name>/."""
    reads = StageParams(params, "approach", key=name)
    approach = approach_of(reads, name)
    train_cfg = reads.section("train")
    pin_cpu_isa(None if torch.cuda.is_available() else train_cfg.cpu_isa)  # before any kernel
    # its networks start from train.init_from (loaded once, before any checkpoint is touched)
    fine_tune = train_cfg.init_from is not None and approach.kind in NETWORK_KINDS
    trained = train_approach(
        approach,
        reads.section("model"),
        train_cfg,
        reads.section("degradations"),
        PAIRS_DIR,
        APPROACH_CHECKPOINTS / name,
        reads.value("study.classifier_steps"),
        init=source_weights(train_cfg.init_from) if fine_tune else None,
    )
    save_approach(trained, APPROACHES_DIR / name)
    done = ", ".join(f"{k} {v}" for k, v in trained.record.items() if k != "classes")
    echo(f"approach {name} ({approach.kind}): {done}; wrote {APPROACHES_DIR / name}/")


def save_approach(trained: TrainedApproach, out_dir: Path) -> None:
    """Write a trained approach into ``out_dir``, replaced as a whole: one model folder per
    network (its training run beside it as ``train``), the routed classifier, then
    ``approach.json``."""
    with staged_dir(out_dir) as tmp:
        run = {"train": trained.train_cfg}
        for folder, model in trained.models.items():
            save_model_dir(model, trained.model_cfg, tmp / folder, extra=run)
        if trained.classifier is not None:
            save_classifier(trained.classifier, tmp / CLASSIFIER_FILE)
        write_approach(tmp, trained.record)
