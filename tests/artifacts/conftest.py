"""Fixtures of the artifact tests: a project folder as the working directory, MLflow offline;
the evaluation tests' tiny bench and MLflow store (tests/evaluation/conftest.py) for promotion."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest

from tests.evaluation.conftest import data, registry

__all__ = ["data", "offline", "registry"]


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A project folder as cwd, MLflow offline and pointed at that folder's default store."""
    project = tmp_path / "project"
    project.mkdir()
    before = mlflow.get_tracking_uri()
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    monkeypatch.chdir(project)
    yield project
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(before)
