"""``girml interpret`` (girml/stages/interpret.py) with ``--model``: the interpretation report
of any approach, not only models/latest, through the CLI on tiny synthesized data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from girml.artifacts.store import save_model_dir
from girml.cli import app
from girml.config import ModelConfig
from girml.models import build_model
from girml.stages.interpret import other_report_dir
from tests.factories import synthesize_tiny, tiny_params

TINY = ModelConfig(width=4, enc_blocks=[1], middle_blocks=0)
SMALL = {
    "images_per_group": 3,
    "tsne_perplexity": 5,
    "lam_window": 8,
    "lam_steps": 8,
    "sensitivity_levels": 3,
    "sensitivity_images": 1,
}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "project"
    synthesize_tiny(root / "data")
    params = {"degradations": tiny_params()["degradations"], "interpret": SMALL}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    torch.manual_seed(0)
    save_model_dir(build_model(TINY), TINY, root / "approaches" / "tiny")
    monkeypatch.chdir(root)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    return root


def test_interpret_any_model_writes_its_own_report(project: Path) -> None:
    args = ["interpret", "--params", "params.yaml", "--model", "approaches/tiny"]
    result = CliRunner().invoke(app, [*args, "--out", "reports/tiny"])
    assert result.exit_code == 0, result.output
    report = json.loads((project / "reports/tiny/interpretation.json").read_text())
    assert report["meta"]["model"] == "NAFNet"
    assert report["meta"]["eval.json"] == "not available"  # models/latest's metrics: not its
    assert report["features"] and report["sensitivity"]["families"]
    assert (project / "reports/tiny/index.html").is_file()
    assert not (project / "reports/interpretation").exists()  # the stage's output untouched
    assert not (project.parent / "mlflow.db").exists()  # nothing logged

    result = CliRunner().invoke(app, ["interpret", "--params", "params.yaml", "--out", "x"])
    assert result.exit_code == 2 and "--out goes with --model" in result.output


def test_interpret_reports_models_latest_and_says_why_it_logged_nothing(project: Path) -> None:
    """The stage's own report: models/latest into reports/interpretation/; a model folder
    without MLflow provenance (not trained by ``girml train``) is reported, not logged."""
    torch.manual_seed(1)
    save_model_dir(build_model(TINY), TINY, project / "models" / "latest")
    result = CliRunner().invoke(app, ["interpret", "--params", "params.yaml"])
    assert result.exit_code == 0, result.output
    assert (
        "not logged to MLflow: metrics/train.json (run) or models/latest/config.yaml has no "
        "mlflow.run_id" in result.output
    )
    assert "report: reports/interpretation/index.html\n" in result.output
    report = json.loads((project / "reports/interpretation/interpretation.json").read_text())
    assert report["meta"]["eval.json"] == "not available"  # the evaluate stage has not run
    assert not (project.parent / "mlflow.db").exists()


def test_default_report_folder_is_named_after_the_model() -> None:
    assert other_report_dir("models:/gir-restorer@champion") == Path(
        "reports/interpretation-gir-restorer-champion"
    )
    assert other_report_dir("models/release") == Path("reports/interpretation-models-release")
