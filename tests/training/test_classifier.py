"""The routed approach's degradation classifier (girml.training.classifier): its classes, a
seeded training that replays bit for bit, classifying, and weights stored without pickles."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from girml.config import DegradationsConfig, TrainConfig
from girml.models.classifier import DegradationClassifier
from girml.training.classifier import (
    classifier_classes,
    classify,
    load_classifier,
    save_classifier,
    train_classifier,
)
from tests.factories import textured_image

TRAIN = TrainConfig(steps=6, batch_size=2, patch_size=16, warmup_steps=0, num_workers=0)


@pytest.fixture(scope="module")
def trained(
    pairs_dir: Path, spec: DegradationsConfig
) -> tuple[DegradationClassifier, list[str], float]:
    return train_classifier(TRAIN, spec, pairs_dir, steps=5)


def test_the_classes_are_clean_then_every_training_family(spec: DegradationsConfig) -> None:
    assert classifier_classes(spec) == ["clean", "noise", "blur", "jpeg"]  # haze is held out


def test_training_gives_an_eval_mode_classifier_and_its_validation_accuracy(
    trained: tuple[DegradationClassifier, list[str], float],
) -> None:
    model, classes, accuracy = trained
    assert classes == ["clean", "noise", "blur", "jpeg"] and not model.training
    assert model.head.out_features == len(classes)
    assert 0.0 <= accuracy <= 1.0 and not math.isnan(accuracy)
    assert classify(model, textured_image(0, 40, 56)) in range(len(classes))  # any size


def test_the_same_seed_trains_the_same_weights(
    pairs_dir: Path,
    spec: DegradationsConfig,
    trained: tuple[DegradationClassifier, list[str], float],
) -> None:
    again, _, accuracy = train_classifier(TRAIN, spec, pairs_dir, steps=5)
    first = trained[0].state_dict()
    assert all(torch.equal(first[k], v) for k, v in again.state_dict().items())
    assert accuracy == trained[2]
    other, _, _ = train_classifier(TRAIN.model_copy(update={"seed": 1}), spec, pairs_dir, 5)
    assert not all(torch.equal(first[k], v) for k, v in other.state_dict().items())


def test_classify_takes_the_highest_logit() -> None:
    model = DegradationClassifier(3).eval()
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.copy_(torch.tensor([0.0, 0.0, 1.0]))
    assert classify(model, np.zeros((8, 8, 3), np.uint8)) == 2


def test_weights_round_trip_as_safetensors_without_unpickling(
    trained: tuple[DegradationClassifier, list[str], float],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model, classes, _ = trained
    path = tmp_path / "classifier.safetensors"
    save_classifier(model, path)

    def refuse(*args, **kwargs):
        raise AssertionError("unpickled")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    loaded = load_classifier(path, len(classes))
    assert not loaded.training
    x = torch.rand(2, 3, 40, 56)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    with pytest.raises(ValueError, match=r"does not match .*approach\.json.*'head\.weight'"):
        load_classifier(path, len(classes) + 1, tmp_path / "approach.json")


def test_a_classifier_file_that_declares_huge_tensors_is_refused_before_reading(
    tmp_path: Path,
) -> None:
    """Bounds before allocation: the header is checked first, so a file whose tensors are not a
    classifier's is refused in one line and nothing is allocated for them."""
    path = tmp_path / "classifier.safetensors"
    save_file({"features.0.weight": torch.zeros(4096, 3, 3, 3)}, path)
    with pytest.raises(ValueError, match=r"classifier\.safetensors: corrupt or does not match"):
        load_classifier(path, 3)
