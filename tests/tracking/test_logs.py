"""Params, metrics and curves logged to the active run (girml/tracking/logs.py), against a real
temporary SQLite MLflow store."""

from __future__ import annotations

import csv
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from girml.config import ModelConfig, TrainConfig
from girml.tracking.logs import flatten_params, log_curves, log_metrics, log_params_flat
from girml.tracking.runs import start_run

TINY = ModelConfig(width=4, enc_blocks=[1], middle_blocks=0)


def test_flatten_params_dotted_keys_json_lists_and_length_limit() -> None:
    flat = flatten_params(
        {"train": TrainConfig(steps=7), "a": {"b": {"c": 1}, "empty": {}}, "long": "x" * 600}
    )
    assert flat["train.steps"] == "7"
    assert flat["train.betas"] == "[0.9, 0.9]"
    assert flat["a.b.c"] == "1"
    assert flat["a.empty"] == "{}"
    assert len(flat["long"]) == 500 and flat["long"].endswith("...")
    assert all(isinstance(v, str) for v in flat.values())


def test_a_run_records_params_metrics_and_curves(mlflow_store: Path) -> None:
    history = [{"step": s, "loss": 1.0 / (s + 1)} for s in range(3)]
    history[-1]["val/psnr"] = 25.5
    with start_run("girml-test", mlflow_store, run_name="r1", log_system_metrics=False) as run:
        logged = log_params_flat({"train": TrainConfig(steps=3), "model": TINY})
        for row in history:
            log_metrics(row["step"], {k: v for k, v in row.items() if k != "step"})
        log_curves(history, "curves/train")
    client = MlflowClient()
    data = client.get_run(run.info.run_id)
    assert data.data.params == logged
    assert data.data.params["train.steps"] == "3"
    assert data.data.params["model.enc_blocks"] == "[1]"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == [0, 1, 2]
    assert data.data.metrics["val/psnr"] == pytest.approx(25.5)

    listed = {a.path for a in client.list_artifacts(run.info.run_id, "curves")}
    assert listed == {"curves/train.csv", "curves/train.png"}
    local = Path(
        mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="curves")
    )
    rows = list(csv.DictReader((local / "train.csv").open(encoding="utf-8")))
    assert [r["step"] for r in rows] == ["0", "1", "2"]
    assert rows[0]["val/psnr"] == "" and float(rows[2]["val/psnr"]) == 25.5
    assert (local / "train.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_arguments_name_the_value(mlflow_store: Path) -> None:
    with start_run("girml-test", mlflow_store, log_system_metrics=False):
        with pytest.raises(ValueError, match="step must be >= 0, got -1"):
            log_metrics(-1, {"loss": 1.0})
        with pytest.raises(ValueError, match="relative artifact path"):
            log_curves([{"step": 0, "loss": 1.0}], "../outside")
        with pytest.raises(ValueError, match="history is empty"):
            log_curves([], "curves/x")
        with pytest.raises(ValueError, match=r"history\[1\] has no 'step'"):
            log_curves([{"step": 0, "loss": 1.0}, {"loss": 0.5}], "curves/x")
