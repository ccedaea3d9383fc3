"""Training the study's approaches (girml.training.approaches): equal compute, what each kind
trains and records, and the approach.json a folder is read by."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

from girml.config import ApproachConfig, DegradationsConfig, ModelConfig, TrainConfig
from girml.models import build_model
from girml.training.approaches import (
    APPROACH_FILE,
    TrainedApproach,
    approach_model_config,
    forward_flops,
    matched_steps,
    param_count,
    read_approach,
    train_approach,
    write_approach,
)

TINY = ModelConfig(width=4, enc_blocks=[1], middle_blocks=0)
TRAIN = TrainConfig(
    steps=6, batch_size=2, patch_size=16, warmup_steps=0, ema_decay=0, num_workers=0, val_every=6
)
PLAIN = {"type": "plain_cnn", "plain_blocks": 2}


@pytest.fixture(scope="module")
def trained(
    pairs_dir: Path, spec: DegradationsConfig, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, TrainedApproach]:
    """One trained approach of each kind (a plain_cnn for the unified one)."""
    root = tmp_path_factory.mktemp("ckpt")
    approaches = {
        "unified": ApproachConfig(kind="unified", model=PLAIN),
        "specialists": ApproachConfig(kind="specialists"),
        "routed": ApproachConfig(kind="routed"),
        "release": ApproachConfig(kind="release"),
    }
    return {
        kind: train_approach(approach, TINY, TRAIN, spec, pairs_dir, root / kind, 5)
        for kind, approach in approaches.items()
    }


# --------------------------------------------------------------------------- compute


def test_equal_compute_gives_a_costlier_network_fewer_steps() -> None:
    assert matched_steps(2600, 100, 100) == 2600
    assert matched_steps(2600, 100, 200) == 1300
    assert matched_steps(2600, 100, 100, share=6) == 433
    assert matched_steps(3, 1, 1000) == 1  # at least one step
    with pytest.raises(ValueError, match="FLOPs must be > 0"):
        matched_steps(10, 0, 1)
    plain = approach_model_config(TINY, ApproachConfig(kind="unified", model={"type": "plain_cnn"}))
    assert plain.type == "plain_cnn" and plain.width == TINY.width
    assert forward_flops(plain, 16) != forward_flops(TINY, 16)
    with pytest.raises(ValidationError, match="no_such_key"):
        approach_model_config(TINY, ApproachConfig(kind="unified", model={"no_such_key": 1}))


# --------------------------------------------------------------------------- training


def test_unified_approach_trains_its_network_at_the_matched_steps(
    trained: dict[str, TrainedApproach],
) -> None:
    unified = trained["unified"]
    plain = approach_model_config(TINY, ApproachConfig(kind="unified", model=PLAIN))
    want = matched_steps(TRAIN.steps, forward_flops(TINY, 16), forward_flops(plain, 16))
    record = unified.record
    assert list(record) == [
        "kind",
        "budget_tflop",
        "model",
        "steps",
        "val_psnr_gain",
        "tflop",
        "train_seconds",
        "params",
    ]
    assert record["kind"] == "unified" and record["model"] == "plain_cnn"
    assert record["steps"] == want
    assert list(unified.models) == ["model"] and unified.model_cfg == plain
    assert unified.train_cfg is not None and unified.train_cfg.steps == want
    assert record["params"] == param_count(unified.models["model"])
    assert record["tflop"] == pytest.approx(record["budget_tflop"], rel=0.5)
    assert unified.classifier is None


def test_specialists_share_the_budget_one_model_per_training_family(
    trained: dict[str, TrainedApproach],
) -> None:
    specialists = trained["specialists"]
    record = specialists.record
    assert record["families"] == ["noise", "blur", "jpeg"]  # haze is held out
    assert record["steps"] == matched_steps(TRAIN.steps, 1, 1, share=3)
    assert list(specialists.models) == record["families"]
    assert record["params"] == sum(param_count(m) for m in specialists.models.values())


def test_routed_trains_the_classifier_only(trained: dict[str, TrainedApproach]) -> None:
    routed = trained["routed"]
    record = routed.record
    assert list(record) == [
        "kind",
        "budget_tflop",
        "classes",
        "classifier_steps",
        "classifier_tflop",
        "train_seconds",
        "classifier_params",
        "val_accuracy",
    ]
    assert record["classes"] == ["clean", "noise", "blur", "jpeg"]
    assert record["classifier_steps"] == 5 and 0.0 <= record["val_accuracy"] <= 1.0
    assert routed.classifier is not None and routed.models == {}
    assert record["classifier_params"] == param_count(routed.classifier)
    assert trained["release"] == TrainedApproach(
        {"kind": "release", "budget_tflop": record["budget_tflop"]}
    )


def test_training_without_pairs_fails_before_anything_is_written(
    spec: DegradationsConfig, tmp_path: Path
) -> None:
    with pytest.raises(FileNotFoundError):
        train_approach(
            ApproachConfig(kind="unified"), TINY, TRAIN, spec, tmp_path / "no-pairs",
            tmp_path / "ckpt", classifier_steps=5,
        )  # fmt: skip


@pytest.mark.parametrize("kind", ["unified", "specialists"])
def test_an_approach_fine_tunes_its_networks_from_the_init_weights(
    kind: str, pairs_dir: Path, spec: DegradationsConfig, tmp_path: Path
) -> None:
    """With ``train.init_from``, each network starts from the weights the caller loaded: one
    step at a tiny learning rate stays at them; without the weights training refuses."""
    torch.manual_seed(7)
    source = build_model(TINY).state_dict()
    tuned = TRAIN.model_copy(update={"init_from": "src", "steps": 1, "lr": 1e-9})
    approach = ApproachConfig(kind=kind)
    done = train_approach(approach, TINY, tuned, spec, pairs_dir, tmp_path, 5, init=source)
    assert list(done.models) == (["model"] if kind == "unified" else ["noise", "blur", "jpeg"])
    for model in done.models.values():
        for key, value in model.state_dict().items():
            torch.testing.assert_close(value, source[key], atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match=r"train\.init_from='src': its weights were not loaded"):
        train_approach(approach, TINY, tuned, spec, pairs_dir, tmp_path / "no-init", 5)


# --------------------------------------------------------------------------- files


def test_approach_json_round_trips_and_names_the_stage_to_run(tmp_path: Path) -> None:
    record = {"kind": "specialists", "budget_tflop": 1.5, "families": ["noise"]}
    write_approach(tmp_path, record)
    assert (tmp_path / APPROACH_FILE).read_text() == json.dumps(record, indent=2) + "\n"
    assert read_approach(tmp_path) == record
    with pytest.raises(FileNotFoundError, match=r"dvc repro approach@nothing"):
        read_approach(tmp_path / "nothing")
