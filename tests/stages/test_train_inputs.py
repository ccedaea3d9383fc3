"""``girml train`` checks its inputs before it starts an MLflow run.

Real parts: the ``girml train`` command in an empty project folder, a SQLite MLflow store.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from girml.stages.contract import EXPERIMENT
from girml.stages.train import check_pairs
from pipelines.cli import app
from tests.factories import tiny_params, write_params


def test_train_without_pairs_fails_in_one_line_and_logs_no_run(
    mlflow_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(mlflow_store)
    params = tiny_params()
    params["model"] = {"type": "nafnet", "width": 8, "enc_blocks": [1], "middle_blocks": 1}
    params["train"] = {"steps": 4, "batch_size": 2, "patch_size": 16, "num_workers": 0}
    write_params(mlflow_store / "params.yaml", params)
    result = CliRunner().invoke(app, ["train"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert errors == [
        "error: data/pairs/train/pairs.jsonl: pairs file not found (run `girml synthesize`)"
    ]
    # no FAILED run (nor an experiment) was left in the store
    experiment = MlflowClient().get_experiment_by_name(EXPERIMENT)
    runs = MlflowClient().search_runs([experiment.experiment_id]) if experiment else []
    assert runs == []
    assert not (mlflow_store / "checkpoints").exists()


def test_check_pairs_names_an_empty_or_missing_split(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "pairs.jsonl").write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match=r"train/pairs.jsonl: no pairs"):
        check_pairs(tmp_path)
