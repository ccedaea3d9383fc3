"""Stored artifacts: where a run's or a registered version's files are, what is there (paths and
sizes), and a whole download into a folder, checked against that listing and retried while it
fails for a transient reason (:func:`girml.core.retry.with_retries`).

The store must be configured first (:func:`girml.tracking.store.configure`). Staging folders,
checksums and messages are the caller's (``girml pull``: :mod:`pipelines.pull_mlflow`).
"""

from __future__ import annotations

import posixpath
import shutil
from pathlib import Path

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

from girml.core.retry import DEFAULT_ATTEMPTS, with_retries
from girml.tracking.store import NotInStore


class IncompleteDownload(RuntimeError):
    """Files are missing or have the wrong size after a download (retried: likely transient)."""

    transient = True  # read by girml.core.retry.is_transient


def run_artifact_uri(run_id: str) -> str:
    """Where run ``run_id`` stores its artifacts (``s3://...``, ``mlflow-artifacts:/...``,
    ``file://...``).

    Raises:
        NotInStore: no such run (MLflow's message).
    """
    try:
        return MlflowClient().get_run(run_id).info.artifact_uri
    except MlflowException as exc:
        raise NotInStore(exc.message) from None


def version_artifact_uri(name: str, version: int) -> str:
    """Where version ``version`` of registered model ``name`` stores its files (the MLflow
    model: ``MLmodel``, ``data/``...), as an artifact URI that :class:`ArtifactStore` reads."""
    return MlflowClient().get_model_version_download_uri(name, str(version))


class ArtifactStore:
    """The artifacts under one artifact URI: listed with their sizes, downloaded and checked.

    Args:
        artifact_uri: a run's or a version's artifact root (``s3://...``,
            ``mlflow-artifacts:/...``, ``file://...``). Nothing is requested until a method is
            called.
    """

    def __init__(self, artifact_uri: str) -> None:
        self._repo = get_artifact_repository(artifact_uri)

    def files(self, path: str | None = None) -> dict[str, int | None]:
        """``{path: size in bytes}`` of every file under ``path`` (a folder or one file, relative
        to the root; None for all), recursively; empty when nothing is there. A size is None
        where the store does not list it."""
        files: dict[str, int | None] = {}
        for info in self._repo.list_artifacts(path):
            if info.is_dir:
                files.update(self.files(info.path))
            else:
                files[info.path] = info.file_size
        if not files and path:  # a file: listing it gives nothing, its parent lists it
            parent = posixpath.dirname(path) or None
            found = self._repo.list_artifacts(parent)
            files = {i.path: i.file_size for i in found if i.path == path}
        return files

    def download(
        self, path: str | None, dst: Path, what: str, attempts: int = DEFAULT_ATTEMPTS
    ) -> tuple[int, int]:
        """Download ``path`` (a folder or file; None for all) into the folder ``dst``, keeping
        paths relative to the root, and check that every listed file is there with its size.

        Each attempt empties ``dst`` first; transient failures (an endpoint down, a short file)
        are retried with exponential backoff and logged as ``"<what>: attempt 1/4 failed..."``.

        Args:
            path: what to download, relative to the root.
            dst: an existing folder that only this download writes to.
            what: what is done, for the retry log (e.g. ``"download models:/gir-restorer/3"``).
            attempts: download attempts, >= 1.

        Returns:
            ``(files downloaded, attempts used)``.

        Raises:
            NotInStore: nothing is stored under ``path``.
            IncompleteDownload: files missing or of the wrong size after the last attempt.
        """
        return with_retries(lambda: self._download_once(path, dst), what, attempts)

    def _download_once(self, path: str | None, dst: Path) -> int:
        """List, download into ``dst`` (emptied first) and check presence and sizes."""
        for child in dst.iterdir():  # leftovers of a failed attempt
            if child.is_dir():
                shutil.rmtree(child)
            else:
                child.unlink()
        expected = self.files(path)
        if not expected:
            where = self._repo.artifact_uri + ("/" + path if path else "")
            raise NotInStore(f"no artifacts at {where}")
        self._repo.download_artifacts(path or "", dst_path=str(dst))
        problems = []
        for rel, size in sorted(expected.items()):
            local = dst / rel
            if not local.is_file():
                problems.append(f"{rel}: missing")
            elif size is not None and local.stat().st_size != size:
                problems.append(f"{rel}: {local.stat().st_size} bytes, the store lists {size}")
        if problems:
            raise IncompleteDownload("incomplete download:\n  " + "\n  ".join(problems))
        return len(expected)
