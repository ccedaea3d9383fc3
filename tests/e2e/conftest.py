"""Fixtures of the end-to-end tests: the default DAG, run once per session by `dvc repro`."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.project import PROJECT_FILES, SMOKE, copy_project, run


@dataclass(frozen=True)
class SmokeRun:
    """A fresh copy of the project after ``dvc repro`` on the smoke profile, and what each of
    its commands printed."""

    project: Path
    first: subprocess.CompletedProcess  # `dvc repro` in the fresh copy: every stage
    again: subprocess.CompletedProcess  # `dvc repro` right after: nothing to do
    status: subprocess.CompletedProcess  # `dvc status` then


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory: pytest.TempPathFactory, mlflow_schema: Path) -> SmokeRun:
    """The default DAG (collect to study) on the smoke profile and tests/e2e/smaller.yaml.

    Run once for the session: tests/e2e/test_pipeline_e2e.py checks it, and
    tests/e2e/test_study_e2e.py adds the study's approaches on top of its data, tuning, training
    and evaluation (one tune/train/evaluate for both). The commands' output is recorded here,
    before any test changes the folder.
    """
    project = copy_project(
        tmp_path_factory.mktemp("girml-e2e"), PROJECT_FILES, SMOKE, mlflow_schema
    )
    first = run(["dvc", "repro"], project)
    again = run(["dvc", "repro"], project)
    status = run(["dvc", "status"], project)
    return SmokeRun(project, first, again, status)
