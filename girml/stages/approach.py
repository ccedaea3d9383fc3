"""Stage ``approach@<name>``: train one approach of the study at the budget of the train section.

Writes models/approaches/<name>/ (approach.json beside the weights; girml/evaluation/approaches.py
says what each kind trains). Checkpoints go to checkpoints/approaches/<name>/: a killed run
resumes there.
"""

from __future__ import annotations

from pathlib import Path

import torch

from girml.config import ApproachConfig
from girml.cpu_isa import pin_cpu_isa
from girml.evaluation.approaches import train_approach
from girml.paths import APPROACH_CHECKPOINTS, APPROACHES_DIR, PAIRS_DIR
from girml.stages.contract import Echo, StageFailed, StageParams


def approach_of(reads: StageParams, name: str) -> ApproachConfig:
    """``study.approaches.<name>``, or :class:`StageFailed` naming the file and the approach."""
    try:
        return reads.value(f"study.approaches.{name}")
    except KeyError:
        raise StageFailed(
            f"{reads.path}: study.approaches has no approach {name!r} "
            "(profiles/study.yaml lists the study's approaches)"
        ) from None


def run(params: Path, name: str, echo: Echo) -> None:
    """Train approach ``name`` into models/approaches/<name>/."""
    reads = StageParams(params, "approach", key=name)
    approach = approach_of(reads, name)
    train_cfg = reads.section("train")
    pin_cpu_isa(None if torch.cuda.is_available() else train_cfg.cpu_isa)  # before any kernel
    record = train_approach(
        approach,
        reads.section("model"),
        train_cfg,
        reads.section("degradations"),
        PAIRS_DIR,
        APPROACHES_DIR / name,
        APPROACH_CHECKPOINTS / name,
        reads.value("study.classifier_steps"),
    )
    done = ", ".join(f"{k} {v}" for k, v in record.items() if k != "classes")
    echo(f"approach {name} ({approach.kind}): {done}; wrote {APPROACHES_DIR / name}/")
