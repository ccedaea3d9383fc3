"""Same config and data, same model files: the train stage's outputs are byte-reproducible."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import mlflow
import pytest
import yaml
from typer.testing import CliRunner

from girml.artifacts.store import CONFIG_FILE, WEIGHTS_FILE
from girml.artifacts.training_run import registered_model, training_run
from girml.cli import app
from girml.core.hashing import file_digest
from girml.core.paths import MODEL_DIR, TRAIN_METRICS
from pipelines.summary import _mlflow_section
from tests.factories import synthesize_tiny, tiny_params, write_params


def _train_params() -> dict:
    params = tiny_params()
    params["model"] = {"type": "nafnet", "width": 8, "enc_blocks": [1], "middle_blocks": 1}
    params["train"] = {
        "seed": 0,
        "steps": 4,
        "batch_size": 2,
        "patch_size": 16,
        "warmup_steps": 1,
        "val_every": 4,
        "ckpt_every": 4,
        "log_every": 2,
        "num_workers": 0,
        "online_degradation_prob": 0.0,
    }
    return params


@pytest.mark.slow
def test_two_trainings_write_byte_identical_model_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mlflow_schema: Path
) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    first, second = tmp_path / "first", tmp_path / "second"
    synthesize_tiny(first / "data")
    shutil.copytree(first / "data", second / "data")
    before = mlflow.get_tracking_uri()
    try:
        for project in (first, second):  # two checkouts, each with its own MLflow store
            write_params(project / "params.yaml", _train_params())
            monkeypatch.chdir(project)
            shutil.copyfile(mlflow_schema, project / "mlflow.db")
            monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project / 'mlflow.db'}")
            result = CliRunner().invoke(app, ["train", "--params", "params.yaml"])
            assert result.exit_code == 0, result.output
    finally:
        mlflow.set_tracking_uri(before)

    for name in (WEIGHTS_FILE, CONFIG_FILE):
        a, b = (p / MODEL_DIR / name for p in (first, second))
        assert a.read_bytes() == b.read_bytes(), f"{name} differs between the two trainings"
    config = yaml.safe_load((first / MODEL_DIR / CONFIG_FILE).read_text(encoding="utf-8"))
    assert set(config) == {"model", "train", "stats", "weights_sha256"}
    assert config["weights_sha256"] == file_digest(first / MODEL_DIR / WEIGHTS_FILE)

    # the run-specific record moved to metrics/train.json, where evaluate and the flows find it
    runs = []
    for project in (first, second):
        metrics = json.loads((project / TRAIN_METRICS).read_text(encoding="utf-8"))
        assert metrics["run"]["weights_sha256"] == config["weights_sha256"]
        assert metrics["run"]["hardware"] and metrics["run"]["samples_per_second"] > 0
        registered = registered_model(project / MODEL_DIR, project / TRAIN_METRICS)
        assert registered.version == 1 == metrics["run"]["registered_version"]
        assert registered.run_id == metrics["run"]["mlflow_run_id"]
        run = training_run(project / MODEL_DIR, project / TRAIN_METRICS)
        assert run.steps == 4 and run.train_seconds == metrics["train_seconds"]
        assert f"`{registered.run_id}`" in "\n".join(_mlflow_section(project))
        runs.append(registered.run_id)
    assert runs[0] != runs[1]


def test_python_caches_do_not_change_a_code_dependency(tmp_path: Path) -> None:
    # dvc.lock hashed code folders with their __pycache__: a fresh clone (no caches) then
    # reran every stage that depends on a code folder. The project's .dvcignore leaves them out.
    import subprocess

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}

    def run(*cmd: str) -> str:
        done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout

    run("git", "init", "-q")
    run("dvc", "init", "-q")
    shutil.copy(root / ".dvcignore", tmp_path / ".dvcignore")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("X = 1\n")
    stage = {"stages": {"s": {"cmd": "echo ok > out.txt", "deps": ["pkg"], "outs": ["out.txt"]}}}
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(stage))
    run("dvc", "repro", "-q")
    cache = tmp_path / "pkg" / "__pycache__"
    cache.mkdir()
    (cache / "mod.cpython-311.pyc").write_bytes(b"\x00machine-specific")
    assert "changed" not in run("dvc", "status")
    (tmp_path / "pkg" / "mod.py").write_text("X = 2\n")  # a real code change still counts
    assert "changed deps" in run("dvc", "status")
