"""Fixtures of the evaluation tests: a tiny synthesized bench, its NIQE model, an MLflow store."""

from __future__ import annotations

from pathlib import Path

import pytest

from girml.evaluation.bench import Bench
from girml.evaluation.scores import fit_pristine_niqe
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
def registry(mlflow_store: Path) -> Path:
    """A fresh SQLite MLflow store for one test (tests/conftest.py); the project root."""
    return mlflow_store
