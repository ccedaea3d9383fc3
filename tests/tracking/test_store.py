"""The tracking store (girml/tracking/store.py): its URI, offline configuration and experiments,
against real SQLite stores in temporary folders."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from girml.tracking.store import (
    ARTIFACT_ROOT_ENV,
    HTTP_DEFAULTS,
    SUPPRESS_URL_PRINT,
    configure,
    ensure_experiment,
    store_exists,
    tracking_uri,
)

pytestmark = pytest.mark.usefixtures("restore_environ")  # configure() exports variables


def test_tracking_uri_is_the_project_database_unless_the_environment_names_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_uri(tmp_path) == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")  # empty counts as unset
    assert tracking_uri(tmp_path).endswith("/mlflow.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking_uri(tmp_path) == "http://127.0.0.1:5000"


def test_store_exists_looks_without_creating_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert not store_exists(tmp_path)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "mlflow.db").touch()
    assert store_exists(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")  # a server: assumed there
    assert store_exists(tmp_path / "elsewhere")


def test_configure_is_offline_keeps_user_settings_and_makes_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "deep" / "store" / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
    monkeypatch.delenv("MLFLOW_DISABLE_TELEMETRY", raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "9")  # the user's own choice
    before = mlflow.get_tracking_uri()
    try:
        assert configure(tmp_path) == f"sqlite:///{db}"
        assert mlflow.get_tracking_uri() == f"sqlite:///{db}"
    finally:
        mlflow.set_tracking_uri(before)
    assert db.parent.is_dir() and not db.exists()
    assert os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"
    assert os.environ["MLFLOW_ENABLE_ASYNC_LOGGING"] == "false"
    assert os.environ[SUPPRESS_URL_PRINT] == "true"
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "9"
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == HTTP_DEFAULTS["MLFLOW_HTTP_REQUEST_TIMEOUT"]


def test_experiments_keep_artifacts_beside_the_database_or_under_the_artifact_root(
    mlflow_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    experiment = ensure_experiment("girml-test", mlflow_store)
    client = MlflowClient()
    location = client.get_experiment(experiment).artifact_location
    assert location == (mlflow_store / "mlartifacts").as_uri()  # never ./mlruns
    assert ensure_experiment("girml-test", mlflow_store) == experiment

    client.delete_experiment(experiment)
    assert ensure_experiment("girml-test", mlflow_store) == experiment  # restored, not new
    assert client.get_experiment(experiment).lifecycle_stage == "active"

    monkeypatch.setenv(ARTIFACT_ROOT_ENV, "s3://bucket/mlflow/")
    other = ensure_experiment("girml-s3", mlflow_store)
    assert client.get_experiment(other).artifact_location == "s3://bucket/mlflow/girml-s3"
