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
from girml.evaluation.costs import MethodCost, RestoreCost, write_method_costs
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


def test_the_evaluate_stage_s_measured_costs_fill_the_cost_columns(project: Path) -> None:
    per_image = project / "metrics/per_image.csv"
    spent = {name: RestoreCost(seconds=s, pixels=2_000_000) for name, s in [("m", 3.0), ("n", 1.0)]}
    costs = {
        "model": MethodCost(spent["m"], params=4321, self_ensemble=8),
        "nlm": MethodCost(spent["n"], params=0),
    }
    write_method_costs(project / "metrics/method_costs.json", costs, per_image)
    result = CliRunner().invoke(app, ["study", "--params", "params.yaml", "--no-mlflow"])
    assert result.exit_code == 0, result.output
    methods = json.loads((project / "metrics/study.json").read_text())["methods"]
    assert (methods["model"]["seconds_per_megapixel"], methods["model"]["params"]) == (1.5, 4321)
    assert (methods["nlm"]["seconds_per_megapixel"], methods["nlm"]["params"]) == (0.5, 0)
    page = (project / "reports/study/index.html").read_text()
    assert "<td>1.500</td><td>4321</td>" in page and "<td>0.500</td><td>0</td>" in page
    assert "x8 self-ensemble was on for model" in page and "rerun the evaluate" not in page

    write_per_image(per_image, study_rows("model") + study_rows("nlm", seed=4))  # evaluated anew
    result = CliRunner().invoke(app, ["study", "--params", "params.yaml", "--no-mlflow"])
    assert result.exit_code == 0, result.output
    methods = json.loads((project / "metrics/study.json").read_text())["methods"]
    assert methods["nlm"]["seconds_per_megapixel"] is None  # those costs were of another run
    assert "rerun the evaluate stage to" in (project / "reports/study/index.html").read_text()


def test_protocol_results_are_shown_beside_the_published_when_present(project: Path) -> None:
    result = CliRunner().invoke(app, ["study", "--params", "params.yaml", "--no-mlflow"])
    assert result.exit_code == 0, result.output
    protocols = json.loads((project / "metrics/study.json").read_text())["protocols"]
    assert set(protocols) == {"allinone-3", "allinone-5"}  # the shipped published table
    assert all(row["published"] for t in protocols.values() for row in t["rows"])
    (project / "metrics/protocols").mkdir()
    sets = {"rain100l": {"n": 1, "methods": {"model": {"psnr": 33.0, "ssim": 0.95, "n": 1}}}}
    (project / "metrics/protocols/allinone-3.json").write_text(
        json.dumps({"protocol": "allinone-3", "convention": "airnet", "sets": sets})
    )
    result = CliRunner().invoke(app, ["study", "--params", "params.yaml", "--no-mlflow"])
    assert result.exit_code == 0, result.output
    data = json.loads((project / "metrics/study.json").read_text())
    first = data["protocols"]["allinone-3"]["rows"][0]
    assert (first["method"], first["published"], first["sets"]["rain100l"]["psnr"]) == (
        "model", False, 33.0
    )  # fmt: skip
    assert set(data["ranking"]) == set(data["methods"]) == {"model", "nlm"}  # none published
    assert "published [1]" in (project / "reports/study/index.html").read_text()
