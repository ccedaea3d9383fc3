"""The ``study`` stage (girml/stages/study.py) through the CLI: params.yaml's study section, the
three outputs and one MLflow parent run with a child run per method (a real temporary SQLite
store)."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
import yaml
from mlflow import MlflowClient
from typer.testing import CliRunner

from girml.cli import app
from girml.evaluation.leaderboard import Cost
from girml.stages.study import model_cost
from tests.evaluation.common import study_rows, write_per_image


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    (root / "metrics").mkdir(parents=True)
    write_per_image(root / "metrics/per_image.csv", study_rows("model") + study_rows("nlm", seed=3))
    (root / "params.yaml").write_text(
        yaml.safe_dump({"study": {"reference": "nlm", "seed": 2, "n_boot": 200}})
    )
    monkeypatch.chdir(root)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    yield root
    while mlflow.active_run() is not None:
        mlflow.end_run()


def test_study_stage_writes_its_outputs_and_logs_a_run_per_method(project: Path) -> None:
    result = CliRunner().invoke(app, ["study", "--params", "params.yaml"])
    assert result.exit_code == 0, result.output
    data = json.loads((project / "metrics/study.json").read_text())
    assert (data["reference"], data["seed"], data["n_boot"]) == ("nlm", 2, 200)
    assert set(data["methods"]) == {"model", "nlm"}
    assert data["methods"]["nlm"]["single-id"]["diff_vs_nlm"] == 0.0
    assert (project / "plots/study.csv").read_text().startswith("method,suite,psnr_gain")
    assert "<html" in (project / "reports/study/index.html").read_text().lower()

    client = MlflowClient()
    runs = client.search_runs([client.get_experiment_by_name("gir").experiment_id])
    parents = [r for r in runs if r.info.run_name == "study"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId")]
    assert len(parents) == 1 and parents[0].data.tags["stage"] == "study"
    assert "params_hash" in parents[0].data.tags  # provenance
    assert sorted(r.info.run_name for r in children) == ["model", "nlm"]


def test_study_stage_without_mlflow_and_with_a_bad_reference(project: Path) -> None:
    result = CliRunner().invoke(app, ["study", "--params", "params.yaml", "--no-mlflow"])
    assert result.exit_code == 0, result.output
    assert not (project.parent / "mlflow.db").exists()
    (project / "params.yaml").write_text(yaml.safe_dump({"study": {"reference": "nope"}}))
    before = (project / "metrics/study.json").read_text()
    result = CliRunner().invoke(app, ["study", "--params", "params.yaml", "--no-mlflow"])
    assert result.exit_code == 1
    assert "reference method 'nope'" in result.output
    assert (project / "metrics/study.json").read_text() == before  # nothing half-written


def test_an_approach_not_yet_scored_names_the_stage_to_run(project: Path) -> None:
    study = {"reference": "nlm", "approaches": {"unified": {"kind": "unified"}}}
    (project / "params.yaml").write_text(yaml.safe_dump({"study": study}))
    result = CliRunner().invoke(app, ["study", "--params", "params.yaml", "--no-mlflow"])
    assert result.exit_code == 1, result.output
    assert result.output.splitlines() == [
        "error: metrics/approaches/unified/cost.json not found: run "
        "`dvc repro approach-eval@unified`"
    ]
    assert not (project / "metrics/study.json").exists()


def test_the_unified_model_s_params_come_from_its_model_folder(project: Path) -> None:
    assert model_cost(project / "models/latest") == Cost()  # no folder: unknown
    folder = project / "models/latest"
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(
        yaml.safe_dump({"model": {"type": "nafnet"}, "stats": {"params": 4321, "flops": 9}})
    )
    result = CliRunner().invoke(app, ["study", "--params", "params.yaml", "--no-mlflow"])
    assert result.exit_code == 0, result.output
    methods = json.loads((project / "metrics/study.json").read_text())["methods"]
    assert methods["model"]["params"] == 4321 and methods["model"]["seconds_per_megapixel"] is None
    assert methods["nlm"]["params"] is None
    assert "<td>4321</td>" in (project / "reports/study/index.html").read_text()
