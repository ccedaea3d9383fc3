"""What a training run logs (girml/training/tracked.py): the configs as flattened params, the
final metrics at the last step with a gain per family, and the curves; a real SQLite MLflow
store."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient
from torch import nn

from girml.tracking.runs import start_run
from girml.training.loop import TrainResult
from girml.training.tracked import final_metrics, log_train_result, log_train_start
from tests.training.common import BASE, MODEL

STATS = {"params": 1234, "flops": 5.0e6}


def _result() -> TrainResult:
    """A finished 40-step run with two families, one of them a combination."""
    return TrainResult(
        model=nn.Identity(),
        metrics={"val.psnr_y_input": 25.0, "val.psnr_y_model": 27.5, "val.psnr_gain": 2.5}
        | {"steps": 40.0, "train_seconds": 3.0, "samples_per_second": 50.0},
        per_family={
            "noise": {"psnr_y_input": 24.0, "psnr_y_model": 27.0, "n": 3},
            "blur+noise": {"psnr_y_input": 26.0, "psnr_y_model": 26.5, "n": 3},
        },
        history=[
            {"step": 10.0, "loss": 0.1, "lr": 1e-3},
            {"step": 20.0, "loss": 0.05, "lr": 5e-4, "val.psnr_y_model": 27.5},
        ],
        resumed_from=None,
        rank_digests=["d"],
    )


def test_final_metrics_add_the_gain_per_family_and_the_model_size() -> None:
    final = final_metrics(_result(), STATS)
    assert final["val.psnr_gain.noise"] == pytest.approx(3.0)
    assert final["val.psnr_gain.blur_noise"] == pytest.approx(0.5)  # no "+" in MLflow names
    assert final["params"] == 1234 and final["flops_256"] == 5.0e6
    assert final["steps"] == 40.0 and final["val.psnr_gain"] == 2.5
    # the loop's metrics first, then the families in name order, then the model's size
    assert list(final)[-4:] == [
        "val.psnr_gain.blur_noise",
        "val.psnr_gain.noise",
        "params",
        "flops_256",
    ]


def test_a_training_run_logs_its_configs_its_result_and_curves(mlflow_store: Path) -> None:
    with start_run("gir", mlflow_store, log_system_metrics=False) as run:
        log_train_start(MODEL, BASE)
        log_train_result(_result(), STATS)
    client = MlflowClient()
    data = client.get_run(run.info.run_id).data
    assert data.params["model.width"] == "8" and data.params["model.enc_blocks"] == "[1]"
    assert data.params["train.steps"] == "40" and data.params["train.loss"] == "charbonnier"
    assert data.metrics == pytest.approx(final_metrics(_result(), STATS))
    (point,) = client.get_metric_history(run.info.run_id, "val.psnr_gain.noise")
    assert point.step == 40  # the final metrics are logged at the last step
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert artifacts == {"curves.csv", "curves.png"}
    csv = Path(client.download_artifacts(run.info.run_id, "curves.csv", str(mlflow_store)))
    assert csv.read_text().splitlines()[0] == "step,loss,lr,val.psnr_y_model"
