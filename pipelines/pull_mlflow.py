"""Pulling from MLflow: a registered model version or a run's artifacts, straight from the
artifact store (S3, a tracking server's proxy or a folder).

The files are checked against the artifact store's listing (every file present, sizes equal),
and against a ``SHA256SUMS`` the artifacts carry; the result is written into ``DIR/SHA256SUMS``
and the folder replaces ``DIR`` only once complete, so ``DIR`` is never half-written. A pulled
model is loaded once before it is moved into place. Each whole download is retried with
exponential backoff (:func:`girml.core.retry.with_retries`).

This module decides what to pull and where; the MLflow requests (the registry, runs, listing
and downloading) are :mod:`girml.tracking.versions` and :mod:`girml.tracking.artifacts`,
imported inside the functions so that other verbs never pay for importing MLflow.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from girml.core.errors import probe_mlflow, probe_s3
from girml.core.retry import DEFAULT_ATTEMPTS
from girml.core.urls import mask_text
from pipelines.pull_checks import PullError, check_out, set_s3_env_defaults
from pipelines.pull_verify import SUMS_FILE, Pulled, check_sums, write_sums

if TYPE_CHECKING:
    from girml.tracking.versions import VersionRecord


def fetch_artifacts(
    artifact_uri: str,
    path: str | None,
    out: Path,
    source: str,
    attempts: int = DEFAULT_ATTEMPTS,
    force: bool = False,
    check: Callable[[Path], Any] | None = None,
) -> Pulled:
    """Download ``path`` under ``artifact_uri`` into ``out`` (keeping relative paths), verified.

    Steps: list the files (sizes), download into a staging folder beside ``out``, compare
    (retrying transient failures: :meth:`girml.tracking.artifacts.ArtifactStore.download`),
    check an artifact-provided
    ``SHA256SUMS``, run ``check`` on the staging folder, write ``SHA256SUMS``, then swap the
    folder into place.

    Args:
        artifact_uri: where the artifacts are stored (``s3://...``, ``mlflow-artifacts:/...``,
            ``file://...``): a run's or a model version's artifact root.
        path: a folder or file under it; None for everything.
        out: the local folder to fill (replaced as a whole).
        source: what to call it in messages.
        attempts: download attempts, >= 1.
        force: replace a non-empty ``out``.
        check: called with the staging folder once the files verify (e.g. load the model);
            raising aborts the pull.

    Returns:
        :class:`Pulled` with ``path`` = ``out``.

    Raises:
        PullError: nothing there, ``out`` not replaceable, a size or checksum mismatch.
    """
    from girml.core.imageio import staged_dir
    from girml.tracking.artifacts import ArtifactStore, IncompleteDownload
    from girml.tracking.store import NotInStore

    if path is not None and (
        not path or PurePosixPath(path).is_absolute() or ".." in PurePosixPath(path).parts
    ):
        raise PullError(f"artifact path must be relative, got {path!r}")
    check_out(out, force)
    if artifact_uri.startswith("s3://"):
        probe_s3()  # an endpoint that is down fails now, not after every retry
    store = ArtifactStore(artifact_uri)
    with staged_dir(out) as tmp:
        try:
            n_files, used = store.download(path, tmp, f"download {source}", attempts)
        except (NotInStore, IncompleteDownload) as exc:
            raise PullError(str(exc)) from None
        if (tmp / SUMS_FILE).is_file():
            check_sums(tmp)
        if check is not None:
            check(tmp)
        write_sums(tmp)
    return Pulled(source=source, path=out, files=n_files, attempts=used)


def _require_tracking_store() -> str:
    """Configure MLflow from ``MLFLOW_TRACKING_URI`` (or the project's ``mlflow.db`` here);
    a tracking server that does not answer raises :class:`girml.core.errors.ServiceUnreachable`."""
    from girml.tracking.store import DB_FILE, configure

    if not os.environ.get("MLFLOW_TRACKING_URI") and not (Path.cwd() / DB_FILE).is_file():
        raise PullError(
            f"no MLflow tracking store: set MLFLOW_TRACKING_URI (a tracking server "
            f"http(s)://host:port or sqlite:///path/{DB_FILE}) or run in the project folder"
        )
    uri = configure(Path.cwd())
    probe_mlflow(uri)
    return uri


def resolve_model(uri: str) -> VersionRecord:
    """The version that ``models:/<name>@<alias>`` or ``models:/<name>/<version>`` names now
    (:func:`girml.tracking.versions.pin_version`).

    Resolving once pins the version, so an alias moved during the pull cannot mix two versions.

    Raises:
        PullError: another URI form, or no such model, version or alias.
    """
    from girml.tracking.store import NotInStore
    from girml.tracking.versions import pin_version

    try:
        return pin_version(uri)
    except NotInStore as exc:
        raise PullError(f"{uri}: not in the registry ({mask_text(str(exc))})") from None
    except ValueError as exc:
        raise PullError(str(exc)) from None


def pull_model(
    uri: str, out: Path, attempts: int = DEFAULT_ATTEMPTS, force: bool = False
) -> Pulled:
    """Pull a registered model version into ``out`` and prove it loads.

    ``out`` then holds the MLflow model (``MLmodel``, ``data/``...) plus ``SHA256SUMS``;
    ``girml restore --model out`` and :func:`girml.artifacts.loading.load_model` accept it.

    Args:
        uri: ``models:/<name>@<alias>`` or ``models:/<name>/<version>``.
        out: the folder to fill (replaced as a whole).
        attempts: download attempts, >= 1.
        force: replace a non-empty ``out``.

    Returns:
        :class:`Pulled` whose ``source`` is ``models:/<name>/<version>``.
    """
    from girml.artifacts.loading import load_model
    from girml.tracking.artifacts import version_artifact_uri

    check_out(out, force)  # before the registry is asked anything
    set_s3_env_defaults()
    _require_tracking_store()
    found = resolve_model(uri)
    location = version_artifact_uri(found.name, found.version)
    return fetch_artifacts(
        location,
        None,
        out,
        found.uri,
        attempts,
        force,
        check=lambda folder: load_model(str(folder), found.uri),
    )


def pull_reports(
    run_id: str,
    out: Path,
    path: str | None = None,
    attempts: int = DEFAULT_ATTEMPTS,
    force: bool = False,
) -> Pulled:
    """Pull a run's artifacts (all of them, or the folder or file ``path``) into ``out``.

    Files keep their path relative to the run's artifact root (``out/reports/...``), with
    ``out/SHA256SUMS`` beside them. Models logged by the run are not included: pull them with
    :func:`pull_model`.

    Raises:
        PullError: no such run, or nothing under ``path``.
    """
    from girml.tracking.artifacts import run_artifact_uri
    from girml.tracking.store import NotInStore

    check_out(out, force)  # before the registry is asked anything
    set_s3_env_defaults()
    _require_tracking_store()
    try:
        artifact_uri = run_artifact_uri(run_id)
    except NotInStore as exc:
        raise PullError(f"run {run_id!r}: {mask_text(str(exc))}") from None
    source = f"runs:/{run_id}/{path}" if path else f"runs:/{run_id}"
    return fetch_artifacts(artifact_uri, path, out, source, attempts, force)
