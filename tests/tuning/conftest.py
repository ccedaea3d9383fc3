"""Fixtures shared by the tuning tests: tiny synthesized pairs and one real tracked search."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest

from girml.tuning.results import TuneResult
from tests.factories import synthesize_tiny
from tests.tuning.common import BASE, CFG, MODEL


@pytest.fixture(scope="session")
def pairs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 train and 6 val 32x32 pairs synthesized from the tiny clean set."""
    return synthesize_tiny(tmp_path_factory.mktemp("data")) / "pairs"


@pytest.fixture(scope="session")
def searched(
    pairs_dir: Path, tmp_path_factory: pytest.TempPathFactory, mlflow_schema: Path
) -> Iterator[tuple[TuneResult, Path, Path]]:
    """One real 2-trial search logged, as the ``tune`` stage does, to a temporary SQLite MLflow
    store (run once per session: tests/tuning/test_search.py and test_outcome.py read it).

    Yields the result, the work folder and the store's file.
    """
    from girml.tuning.outcome import log_search  # imports Ray (seconds)
    from girml.tuning.search import tune

    root = tmp_path_factory.mktemp("project")
    (root / "params.yaml").write_text("tune: {}\n")
    db = root / "mlflow.db"
    shutil.copyfile(mlflow_schema, db)
    before = mlflow.get_tracking_uri()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
        patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        patch.setenv("GIT_CEILING_DIRECTORIES", str(root.parent))
        result = tune(CFG, MODEL, BASE, pairs_dir, root / "work")
        log_search(result, CFG, MODEL, BASE, root, Path("params.yaml"))
        while mlflow.active_run() is not None:
            mlflow.end_run()
    mlflow.set_tracking_uri(before)  # the store is read back by its path, not the environment
    yield result, root / "work", db
