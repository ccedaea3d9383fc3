"""Stored artifacts (girml/tracking/artifacts.py) in a real SQLite store with its artifacts in a
folder: where a run's and a version's files are, their listing, and checked downloads.

Downloads from S3, through ``girml pull`` and a failing network: tests/pipelines/
test_pull_mlflow.py and test_s3_faults.py.
"""

from __future__ import annotations

import logging
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

from girml.core.retry import is_transient
from girml.tracking.artifacts import (
    ArtifactStore,
    IncompleteDownload,
    run_artifact_uri,
    version_artifact_uri,
)
from girml.tracking.runs import start_run
from girml.tracking.store import NotInStore, configure

REPORT = "PSNR gain +1.23 dB\n"
FILES = {"notes.txt": 2, "reports/figures/a.txt": 6, "reports/summary.txt": len(REPORT)}

pytestmark = pytest.mark.usefixtures("restore_environ")  # configure() exports variables


def _run(root: Path) -> str:
    """A finished run holding :data:`FILES`; its id."""
    configure(root)
    with start_run("girml-test", root, log_system_metrics=False) as run:
        mlflow.log_text(REPORT, "reports/summary.txt")
        mlflow.log_text("figure", "reports/figures/a.txt")
        mlflow.log_text("n\n", "notes.txt")
    return run.info.run_id


def _tree(folder: Path) -> dict[str, int]:
    return {
        p.relative_to(folder).as_posix(): p.stat().st_size for p in folder.rglob("*") if p.is_file()
    }


def test_where_a_run_and_a_version_keep_their_files(mlflow_store: Path) -> None:
    run_id = _run(mlflow_store)
    uri = run_artifact_uri(run_id)
    assert uri == MlflowClient().get_run(run_id).info.artifact_uri
    assert uri.startswith((mlflow_store / "mlartifacts").as_uri())  # the store's folder
    assert ArtifactStore(uri).files() == FILES
    with pytest.raises(NotInStore, match="0" * 32):
        run_artifact_uri("0" * 32)

    client = MlflowClient()
    client.create_registered_model("m")
    client.create_model_version("m", f"{uri}/reports", run_id=run_id)
    assert ArtifactStore(version_artifact_uri("m", 1)).files() == {
        "figures/a.txt": 6,
        "summary.txt": len(REPORT),
    }


def test_files_lists_a_folder_recursively_one_file_or_nothing(mlflow_store: Path) -> None:
    store = ArtifactStore(run_artifact_uri(_run(mlflow_store)))
    assert store.files("reports") == {k: v for k, v in FILES.items() if k.startswith("reports/")}
    assert store.files("reports/figures/a.txt") == {"reports/figures/a.txt": 6}
    assert store.files("notes.txt") == {"notes.txt": 2}  # a file at the root
    assert store.files("nope") == {} and store.files("reports/nope.txt") == {}


def test_a_download_keeps_paths_and_replaces_what_was_in_the_folder(
    mlflow_store: Path, tmp_path: Path
) -> None:
    uri = run_artifact_uri(_run(mlflow_store))
    store = ArtifactStore(uri)
    dst = tmp_path / "dst"
    (dst / "old").mkdir(parents=True)
    (dst / "old/stale.txt").write_text("from a failed attempt")
    (dst / "stale.txt").write_text("x")
    assert store.download("reports", dst, "download r") == (2, 1)
    assert _tree(dst) == {k: v for k, v in FILES.items() if k.startswith("reports/")}
    assert (dst / "reports/summary.txt").read_text() == REPORT
    assert store.download("reports/summary.txt", dst, "download f") == (1, 1)
    assert _tree(dst) == {"reports/summary.txt": len(REPORT)}
    assert store.download(None, dst, "download all") == (3, 1)
    assert _tree(dst) == FILES
    with pytest.raises(NotInStore, match=f"^no artifacts at {uri}/nope$"):
        store.download("nope", dst, "download nope")


def test_a_short_or_missing_file_is_retried_then_reported(
    mlflow_store: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = ArtifactStore(run_artifact_uri(_run(mlflow_store)))
    waits: list[float] = []
    monkeypatch.setattr("girml.core.retry.time.sleep", waits.append)
    real = LocalArtifactRepository.download_artifacts
    faults: list[str] = ["cut"]  # what the next downloads do to summary.txt, one each

    def faulty(self: LocalArtifactRepository, artifact_path: str, dst_path: str) -> str:
        local = real(self, artifact_path, dst_path=dst_path)
        fault = faults.pop(0) if faults else None
        if fault == "cut":
            (Path(dst_path) / "reports/summary.txt").write_text("cut")
        elif fault == "lose":
            (Path(dst_path) / "reports/summary.txt").unlink()
        return local

    monkeypatch.setattr(LocalArtifactRepository, "download_artifacts", faulty)
    dst = tmp_path / "dst"
    dst.mkdir()
    with caplog.at_level(logging.WARNING, logger="girml.core.retry"):
        assert store.download("reports", dst, "download r", attempts=2) == (2, 2)
    assert (dst / "reports/summary.txt").read_text() == REPORT and waits == [1.0]
    [retried] = [r.getMessage() for r in caplog.records if r.name == "girml.core.retry"]
    assert retried == (
        "download r: attempt 1/2 failed (IncompleteDownload: incomplete download:); "
        "retrying in 1.0 s"
    )

    faults[:] = ["cut", "lose"]
    with pytest.raises(IncompleteDownload) as failed:
        store.download("reports", dst, "download r", attempts=2)
    assert str(failed.value) == "incomplete download:\n  reports/summary.txt: missing"
    faults[:] = ["cut"]
    with pytest.raises(IncompleteDownload, match=r"summary.txt: 3 bytes, the store lists 19$"):
        store.download("reports", dst, "download r", attempts=1)
    assert is_transient(IncompleteDownload("short file"))
    assert not is_transient(NotInStore("no artifacts at file:///x"))
