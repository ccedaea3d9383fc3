"""``girml train`` (girml/stages/train.py) checks its inputs before it starts an MLflow run,
loads the weights of ``train.init_from`` itself (inside the run, before any checkpoint) and logs
the run.

Real parts: the ``girml train`` command in an empty project folder, a SQLite MLflow store.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from girml.artifacts.store import save_model_dir
from girml.config import ModelConfig
from girml.models import build_model
from girml.stages.contract import EXPERIMENT
from girml.stages.train import check_pairs
from pipelines.cli import app
from tests.factories import synthesize_tiny, tiny_params, write_params


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


def test_check_pairs_counts_pairs_and_photos(tmp_path: Path) -> None:
    synthesize_tiny(tmp_path / "data")
    counts = check_pairs(tmp_path / "data" / "pairs")
    assert set(counts) == {"train", "val"}
    assert all(pairs >= photos >= 1 for pairs, photos in counts.values())


def test_check_pairs_names_an_empty_or_missing_split(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "pairs.jsonl").write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match=r"train/pairs.jsonl: no pairs"):
        check_pairs(tmp_path)


def test_train_loads_init_from_itself_and_names_a_bad_source(
    mlflow_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stage loads ``train.init_from`` (the training loop takes the weights), inside its
    MLflow run, before any checkpoint is written."""
    monkeypatch.chdir(mlflow_store)
    synthesize_tiny(mlflow_store / "data")
    params = tiny_params()
    model = {"type": "nafnet", "width": 8, "enc_blocks": [1], "middle_blocks": 1}
    params["model"] = model
    params["train"] = {"steps": 2, "batch_size": 2, "patch_size": 16, "num_workers": 0}
    params["train"] |= {"val_every": 2, "ckpt_every": 2, "log_every": 1, "init_from": "nowhere"}
    write_params(mlflow_store / "params.yaml", params)
    result = CliRunner().invoke(app, ["train"])
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith(
        "error: train.init_from='nowhere': cannot load it: model folder nowhere not found"
    )
    assert not (mlflow_store / "checkpoints").exists()

    source = save_model_dir(build_model(ModelConfig(**model)), ModelConfig(**model), Path("src"))
    params["train"]["init_from"] = str(source)
    params["profile"] = "smoke"  # as `girml profile profiles/smoke.yaml` writes it
    params["train"]["curve_every"] = 1  # the logging-only validation curve
    write_params(mlflow_store / "params.yaml", params)
    result = CliRunner().invoke(app, ["train"])
    assert result.exit_code == 0, result.output
    run = MlflowClient().search_runs(
        [MlflowClient().get_experiment_by_name(EXPERIMENT).experiment_id],
        filter_string="attributes.status = 'FINISHED'",
    )
    assert [r.data.tags["init_from"] for r in run] == ["src"]
    # what the run logged (girml/training/tracked.py): configs, final metrics, curves
    data = run[0].data
    assert data.params["train.init_from"] == "src" and data.params["model.width"] == "8"
    assert {"val.psnr_gain", "steps", "params", "flops_256"} <= set(data.metrics)
    curve = MlflowClient().get_metric_history(run[0].info.run_id, "curve.val_psnr_gain")
    assert sorted(point.step for point in curve) == [1, 2]
    artifacts = {a.path for a in MlflowClient().list_artifacts(run[0].info.run_id)}
    assert {"curves.csv", "curves.png"} <= artifacts
    assert any(key.startswith("loss_") for key in data.metrics)  # named for what it is
    # the registered version explains itself: provenance tags and a description
    (version,) = MlflowClient().search_model_versions(f"run_id='{run[0].info.run_id}'")
    assert version.tags["git_commit"] == data.tags["git_commit"]
    assert version.tags["params_hash"] == data.tags["params_hash"]
    assert version.tags["init_from"] == "src" and version.tags["stage"] == "train"
    assert version.tags["profile"] == data.tags["profile"] == "smoke"
    assert "- **Profile**: `smoke`." in version.description
    assert "fine-tuned from `src`" in version.description
    assert "- **Validation** (PSNR-Y, kept weights):" in version.description
    registered = MlflowClient().get_registered_model(version.name)
    assert "general image restorer" in registered.description
