"""One-family specialists (girml.training.specialists): the restricted spec, the default
families and training one network per family."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from girml.config import DegradationsConfig, ModelConfig, TrainConfig
from girml.models import build_model
from girml.training.specialists import (
    default_specialist_families,
    specialist_spec,
    specialist_train_config,
    train_specialists,
)

TINY = ModelConfig(width=4, enc_blocks=[1], middle_blocks=0)
TINY_TRAIN = TrainConfig(
    steps=2, batch_size=2, patch_size=16, warmup_steps=0, ema_decay=0, num_workers=0
)


def test_default_families_are_those_not_held_out(spec: DegradationsConfig) -> None:
    assert spec.held_out.families == ["haze"]
    assert default_specialist_families(spec) == ["noise", "blur", "jpeg"]


def test_specialist_spec_and_training(
    pairs_dir: Path, spec: DegradationsConfig, tmp_path: Path
) -> None:
    only = specialist_spec(spec, "blur")
    assert list(only.families) == ["blur"] and only.train_composers == {"single": 1.0}
    assert only.held_out.families == [] and only.held_out.combinations == []
    with pytest.raises(ValueError, match="unknown family 'rain'"):
        specialist_spec(spec, "rain")
    models = train_specialists(TINY, TINY_TRAIN, spec, ["blur"], pairs_dir, tmp_path)
    assert list(models) == ["blur"] and not models["blur"].training
    assert (tmp_path / "blur" / "checkpoint-2").is_dir()
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        assert models["blur"](x).shape == x.shape
    with pytest.raises(ValueError, match="families is empty"):
        train_specialists(TINY, TINY_TRAIN, spec, [], pairs_dir, tmp_path)


def test_specialists_fine_tune_from_the_init_weights(
    pairs_dir: Path, spec: DegradationsConfig, tmp_path: Path
) -> None:
    """With ``train.init_from``, every specialist starts from the weights the caller loaded:
    one step at a tiny learning rate stays at them; without the weights training refuses."""
    torch.manual_seed(7)
    source = build_model(TINY).state_dict()  # not the weights train's seed would draw
    tuned = TINY_TRAIN.model_copy(update={"init_from": "src", "steps": 1, "lr": 1e-9})
    models = train_specialists(
        TINY, tuned, spec, ["noise", "blur"], pairs_dir, tmp_path / "tuned", init=source
    )
    assert list(models) == ["noise", "blur"]
    for model in models.values():
        for key, value in model.state_dict().items():
            torch.testing.assert_close(value, source[key], atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match=r"train\.init_from='src': its weights were not loaded"):
        train_specialists(TINY, tuned, spec, ["noise"], pairs_dir, tmp_path / "no-init")
    assert not (tmp_path / "no-init").exists()  # refused before any checkpoint


def test_the_specialist_run_degrades_every_sample_on_the_fly() -> None:
    cfg = specialist_train_config(TINY_TRAIN.model_copy(update={"online_degradation_prob": 0.3}))
    assert cfg.online_degradation_prob == 1.0 and cfg.steps == TINY_TRAIN.steps
