"""The ``approach@<name>`` stage's writing (girml.stages.approach.save_approach): one model folder
per network, the routed classifier and approach.json, replacing the folder as a whole."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from girml.artifacts.store import load_model_dir, read_model_config
from girml.config import ModelConfig, TrainConfig
from girml.models import build_model
from girml.models.classifier import DegradationClassifier
from girml.stages.approach import save_approach
from girml.training.approaches import CLASSIFIER_FILE, TrainedApproach, read_approach
from girml.training.classifier import load_classifier

TINY = ModelConfig(width=4, enc_blocks=[1], middle_blocks=0)
RUN = TrainConfig(steps=3, batch_size=2, patch_size=16, num_workers=0)


def _net(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(TINY).eval()


def test_networks_are_model_folders_beside_approach_json(tmp_path: Path) -> None:
    nets = {"noise": _net(0), "blur": _net(1)}
    record = {"kind": "specialists", "budget_tflop": 0.1, "families": ["noise", "blur"]}
    out = tmp_path / "approaches" / "specialists"
    save_approach(TrainedApproach(record, nets, TINY, RUN), out)
    assert sorted(p.name for p in out.iterdir()) == ["approach.json", "blur", "noise"]
    assert read_approach(out) == record
    for family, net in nets.items():
        assert read_model_config(out / family)["train"]["steps"] == RUN.steps
        loaded = load_model_dir(out / family)
        assert all(
            torch.equal(a, b)
            for a, b in zip(loaded.state_dict().values(), net.state_dict().values(), strict=True)
        )


def test_the_routed_classifier_is_stored_as_safetensors(tmp_path: Path) -> None:
    torch.manual_seed(0)
    classifier = DegradationClassifier(3).eval()
    record = {"kind": "routed", "budget_tflop": 0.1, "classes": ["clean", "noise", "blur"]}
    out = tmp_path / "routed"
    save_approach(TrainedApproach(record, classifier=classifier), out)
    assert sorted(p.name for p in out.iterdir()) == ["approach.json", CLASSIFIER_FILE]
    loaded = load_classifier(out / CLASSIFIER_FILE, 3)
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        assert torch.equal(loaded(x), classifier(x))


def test_a_failed_write_leaves_the_previous_folder(tmp_path: Path) -> None:
    out = tmp_path / "approaches" / "unified"
    first = {"kind": "unified", "budget_tflop": 0.1}
    save_approach(TrainedApproach(first, {"model": _net(0)}, TINY, RUN), out)
    broken = TrainedApproach({"kind": "unified", "bad": {1, 2}}, {"model": _net(1)}, TINY, RUN)
    with pytest.raises(TypeError, match="not JSON serializable"):
        save_approach(broken, out)  # a set: approach.json cannot be written
    assert read_approach(out) == first
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]
