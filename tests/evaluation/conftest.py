"""Fixtures of the evaluation tests: a tiny synthesized bench, its NIQE model, an MLflow store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest

from girml.evaluation.harness import Bench, fit_pristine_niqe
from girml.metrics import NiqeModel
from tests.factories import synthesize_tiny


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """clean/, pairs/ and bench/ (4 images of 32x32 per family) from the synthesize stage."""
    return synthesize_tiny(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def pristine(data: Path) -> NiqeModel:
    return fit_pristine_niqe(data / "clean", patch_size=16)


@pytest.fixture(scope="module")
def bench(data: Path) -> Bench:
    return Bench(data / "bench")


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh SQLite MLflow store for one test (offline); yields the project root."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    before = mlflow.get_tracking_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    mlflow.set_tracking_uri(uri)
    yield tmp_path
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(before)
