"""``girml evaluate`` (girml/stages/evaluate.py) records the champion decision in the registry
and the model's MLflow run, takes the specialists it scores from the specialists stage's folder,
and stops in one line when that stage has not written them.

Real parts: the ``girml evaluate`` command in a project folder with a synthesized bench, a
SQLite MLflow store with a registered model.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from girml.artifacts.specialists import save_no_specialists
from girml.cli import app
from girml.config import EvaluateConfig
from girml.evaluation.bench import Bench
from girml.tracking.versions import CHAMPION, REGISTERED_MODEL, get_alias_version
from girml.training.approaches import param_count
from tests.evaluation.common import register, tiny_model
from tests.factories import synthesize_tiny, tiny_params, write_params


def test_evaluate_writes_its_files_then_records_the_decision(
    mlflow_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(mlflow_store)
    synthesize_tiny(mlflow_store / "data")
    run_id, version = register(tiny_model(0, 0.0), mlflow_store, mlflow_store / "models" / "latest")
    params = {**tiny_params(), "evaluate": {"niqe_patch_size": 16, "baselines": ["identity"]}}
    write_params(mlflow_store / "params.yaml", params)
    result = CliRunner().invoke(app, ["evaluate"])
    assert result.exit_code == 0, result.output
    assert f"version {version} promoted to @champion" in result.output
    metrics = json.loads((mlflow_store / "metrics" / "eval.json").read_text())
    assert metrics["champion.promoted"] is True and metrics["champion.version"] == version
    # the stage recorded what the evaluation decided: the alias and the training run
    assert get_alias_version(REGISTERED_MODEL, CHAMPION) == version
    run = MlflowClient().get_run(run_id)
    assert run.data.tags["champion.promoted"] == "true"
    assert run.data.metrics["gir_score"] == pytest.approx(metrics["gir_score"])
    logged = MlflowClient().list_artifacts(run_id, "evaluation")
    assert sorted(a.path for a in logged) == ["evaluation/eval.json", "evaluation/per_family.csv"]
    # each method's restoring time and size, apart from the reproducible files
    costs = json.loads((mlflow_store / "metrics" / "method_costs.json").read_text())["methods"]
    assert list(costs) == ["model", "identity"]
    assert costs["model"]["params"] == param_count(tiny_model(0, 0.0)) > 0
    assert costs["identity"]["params"] == 0 and "whole" not in costs["identity"]
    bench = Bench(mlflow_store / "data" / "bench")
    crops = sum(bench.load(item)[0][..., 0].size for item in bench.items) / 1e6
    for cost in (costs["model"], costs["identity"]):
        assert cost["images"] == len(bench) and cost["megapixels"] == pytest.approx(crops)
        assert cost["seconds"] > 0
    assert (costs["model"]["self_ensemble"], costs["identity"]["self_ensemble"]) == (
        EvaluateConfig().self_ensemble, 1
    )  # fmt: skip
    assert costs["model"]["whole"]["images"] == len(Bench(bench.root, whole=True))


@pytest.mark.parametrize(
    ("written", "error"),
    [
        (False, "error: models/specialists/specialists.json not found: run `girml specialists`"),
        (
            True,
            "error: evaluate.specialists is on but models/specialists has no specialists: run "
            "`girml specialists` first",
        ),
    ],
)
def test_specialists_on_needs_the_specialists_stage(
    written: bool, error: str, mlflow_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(mlflow_store)
    if written:  # written while evaluate.specialists was off
        save_no_specialists(Path("models/specialists"))
    write_params(mlflow_store / "params.yaml", {**tiny_params(), "evaluate": {"specialists": True}})
    result = CliRunner().invoke(app, ["evaluate"])
    assert result.exit_code == 1, result.output
    assert result.output.splitlines() == [error]
    assert not (mlflow_store / "metrics").exists()
