"""The training run behind a model folder (girml/artifacts/training_run.py): read from the train
stage's ``metrics/train.json`` when it describes the folder's weights, else from the folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from girml.artifacts.store import read_model_config, save_model_dir
from girml.artifacts.training_run import RegisteredModel, registered_model, training_run
from tests.evaluation.common import TINY, tiny_model


def test_registered_model_reads_train_json_and_older_folders(tmp_path: Path) -> None:
    folder = save_model_dir(tiny_model(0, 0.0), TINY, tmp_path / "latest")
    sha = read_model_config(folder)["weights_sha256"]
    train_json = tmp_path / "train.json"
    record = {"weights_sha256": sha, "mlflow_run_id": "r1", "registered_version": 3}
    train_json.write_text(json.dumps({"run": record}))
    assert registered_model(folder, train_json) == RegisteredModel("r1", 3)
    with pytest.raises(ValueError, match=r"config\.yaml has no mlflow\.run_id"):
        registered_model(folder)  # the folder alone does not know its run
    # a train.json that describes other weights is not this folder's
    train_json.write_text(json.dumps({"run": {**record, "weights_sha256": "0" * 64}}))
    with pytest.raises(ValueError, match=r"train\.json \(run\) or .*no mlflow\.run_id"):
        registered_model(folder, train_json)
    # folders written before the run record moved to train.json name it themselves
    old = save_model_dir(
        tiny_model(0, 0.0),
        TINY,
        tmp_path / "old",
        extra={"mlflow": {"run_id": "r0", "registered_version": 2}, "hardware": "Old CPU"},
    )
    assert registered_model(old, train_json) == RegisteredModel("r0", 2)
    assert training_run(old, tmp_path / "missing.json").hardware == "Old CPU"


def test_training_run_reads_the_run_record_of_these_weights(tmp_path: Path) -> None:
    folder = save_model_dir(tiny_model(1, 0.0), TINY, tmp_path / "latest")
    sha = read_model_config(folder)["weights_sha256"]
    train_json = tmp_path / "train.json"
    run = {"weights_sha256": sha, "mlflow_run_id": "r7", "registered_version": 7}
    run |= {"hardware": "Test CPU", "samples_per_second": 12.5}
    train_json.write_text(json.dumps({"steps": 40.0, "train_seconds": 3.5, "run": run}))
    found = training_run(folder, train_json)
    assert (found.source, found.mlflow_run_id, found.registered_version) == (train_json, "r7", 7)
    assert (found.hardware, found.steps, found.train_seconds) == ("Test CPU", 40, 3.5)
    assert found.samples_per_second == 12.5
    alone = training_run(folder)  # nothing recorded in the folder itself
    assert alone.source == folder / "config.yaml" and alone.mlflow_run_id is None
    train_json.write_text("{not json")
    with pytest.raises(ValueError, match=r"train\.json: not valid JSON"):
        training_run(folder, train_json)
    with pytest.raises(FileNotFoundError, match=r"config\.yaml not found"):
        training_run(tmp_path / "nowhere", train_json)
