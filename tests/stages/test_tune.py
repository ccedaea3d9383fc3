"""``girml tune`` (girml/stages/tune.py) in a tiny project: it searches ``params.yaml: tune``
over the model and train sections, logs the search to MLflow and writes tune/best.yaml and
reports/tune/trials.csv; a bad ``train.init_from`` stops it in one line before the search starts.

Real parts: the ``girml tune`` command, the synthesize stage's pairs, a local Ray session, a
SQLite MLflow store.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient
from typer.testing import CliRunner

from girml.stages.contract import EXPERIMENT
from pipelines.cli import app
from tests.factories import synthesize_tiny, tiny_params, write_params
from tests.tuning.common import BASE, CFG, MODEL


def _params(**train: object) -> dict:
    """The tiny params with the tuning tests' model, 60-step base and 2-trial search."""
    return {
        **tiny_params(),
        "model": MODEL.model_dump(mode="json"),
        "train": {**BASE.model_dump(mode="json", exclude_defaults=True), **train},
        "tune": CFG.model_dump(mode="json", exclude_defaults=True),
    }


def test_a_bad_init_source_fails_in_one_line_before_any_search(
    mlflow_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(mlflow_store)
    write_params(mlflow_store / "params.yaml", _params(init_from="nowhere"))
    result = CliRunner().invoke(app, ["tune"])
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith(
        "error: train.init_from='nowhere': cannot load it: model folder nowhere not found"
    )
    assert not (mlflow_store / "checkpoints").exists() and not (mlflow_store / "tune").exists()
    assert MlflowClient().get_experiment_by_name(EXPERIMENT) is None


@pytest.mark.slow
def test_tune_searches_logs_the_search_and_writes_the_winner(
    mlflow_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(mlflow_store)
    synthesize_tiny(mlflow_store / "data")
    write_params(mlflow_store / "params.yaml", _params())
    result = CliRunner().invoke(app, ["tune"])
    assert result.exit_code == 0, result.output

    best = yaml.safe_load((mlflow_store / "tune" / "best.yaml").read_text())
    assert best["steps_per_trial"] == CFG.steps_per_trial
    assert set(best["params"]) <= {"model", "train"}
    with (mlflow_store / "reports" / "tune" / "trials.csv").open(newline="") as fh:
        trials = list(csv.DictReader(fh))
    assert len(trials) == 2  # tune.num_samples searched + the untuned default
    assert {"train.lr", "model.enc_blocks"} <= set(trials[0])
    assert "searched 2 configurations in " in result.output  # both trials reported
    winner = f"best val PSNR-Y {best['score']:.2f} dB (untuned default {best['default_score']:.2f})"
    assert f"{winner} -> tune/best.yaml\n" in result.output

    client = MlflowClient()
    runs = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id])
    parents = [r for r in runs if r.info.run_name == "tune"]
    assert len(parents) == 1 and parents[0].data.tags["stage"] == "tune"
    assert "params_hash" in parents[0].data.tags  # provenance of params.yaml
