"""Stage ``specialists``: one-family specialists of models/latest, for evaluate to score.

With ``evaluate.specialists`` on, trains one network per family (``evaluate.specialist_families``,
or every family not held out) with models/latest's architecture and training run, started from
its ``train.init_from`` when it names one (:func:`girml.training.specialists.train_specialists`),
and writes models/specialists/ (:mod:`girml.artifacts.specialists`: a model folder per family
and ``specialists.json`` listing them). Off (the default), it writes the list alone, empty.
Checkpoints go to checkpoints/specialists/<family>/: a killed run resumes there.
"""

from __future__ import annotations

from pathlib import Path

from girml.artifacts.loading import source_weights
from girml.artifacts.specialists import save_no_specialists, save_specialists
from girml.artifacts.store import CONFIG_FILE, read_model_config
from girml.config import ModelConfig, TrainConfig, parse_section
from girml.core.paths import MODEL_DIR, PAIRS_DIR, SPECIALIST_DIR, SPECIALISTS_DIR
from girml.stages.contract import Echo, StageParams
from girml.training.specialists import (
    default_specialist_families,
    specialist_train_config,
    train_specialists,
)


def run(params: Path, echo: Echo) -> None:
    """Train the specialists into models/specialists/, or write an empty list when off."""
    reads = StageParams(params, "specialists")
    if not reads.value("evaluate.specialists"):
        save_no_specialists(SPECIALISTS_DIR)
        echo(f"evaluate.specialists is off: wrote {SPECIALISTS_DIR}/ with no specialists")
        return
    spec = reads.section("degradations")
    families = reads.value("evaluate.specialist_families") or default_specialist_families(spec)
    model_cfg, train_cfg = model_configs(MODEL_DIR)
    # loaded once, before any checkpoint is touched: a bad source changes nothing
    init = source_weights(train_cfg.init_from) if train_cfg.init_from is not None else None
    models = train_specialists(
        model_cfg, train_cfg, spec, families, PAIRS_DIR, SPECIALIST_DIR, init=init
    )
    save_specialists(models, model_cfg, specialist_train_config(train_cfg), SPECIALISTS_DIR)
    echo(
        f"trained specialists for {', '.join(families)} ({train_cfg.steps} steps each); "
        f"wrote {SPECIALISTS_DIR}/"
    )


def model_configs(model_dir: Path) -> tuple[ModelConfig, TrainConfig]:
    """The ``model`` and ``train`` sections of a model folder's ``config.yaml``, validated
    (errors name the file and the key)."""
    config = read_model_config(model_dir)
    source = str(Path(model_dir) / CONFIG_FILE)
    model_cfg = parse_section(config["model"], "model", ModelConfig, source=source)
    train_cfg = parse_section(config.get("train"), "train", TrainConfig, source=source)
    return model_cfg, train_cfg
