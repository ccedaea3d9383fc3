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
from girml.training.tracked import (
    final_metrics,
    log_train_result,
    log_train_start,
    version_description,
)
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
            {"step": 10.0, "loss_neg_psnr_db": -20.5, "lr": 1e-3},
            {"step": 20.0, "loss_neg_psnr_db": -22.0, "lr": 5e-4, "val.psnr_y_model": 27.5},
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
    assert csv.read_text().splitlines()[0] == "step,loss_neg_psnr_db,lr,val.psnr_y_model"


def test_version_description_says_data_profile_steps_gains_and_harm() -> None:
    result = _result()
    result.per_family["jpeg"] = {"psnr_y_input": 30.0, "psnr_y_model": 29.8, "n": 2}
    text = version_description(
        result, {"train": (120, 12), "val": (6, 3)}, hardware="a CPU", init_from="models/x"
    )
    assert text.startswith("Trained by the `train` stage (fine-tuned from `models/x`): 40 steps")
    assert "120 train pairs from 12 photos, 6 val pairs from 3 photos" in text
    assert "- **Profile**: not recorded." in text
    assert "25.00 -> 27.50 dB (+2.50)" in text
    assert "- **Largest gains**: noise +3.00, blur+noise +0.50 dB." in text
    assert "- **Harm**: jpeg -0.20 dB." in text
    clean = version_description(_result(), {"train": (1, 1)}, hardware="h", profile="gpu")
    assert "- **Profile**: `gpu`." in clean and "no family loses more than 0.05 dB" in clean
