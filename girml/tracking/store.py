"""Where MLflow tracks: the tracking URI, MLflow configured offline, experiments, and the error
(:class:`NotInStore`) that a lookup finding nothing raises.

Contract (DESIGN.md):

- Tracking URI: ``MLFLOW_TRACKING_URI`` when set, else ``sqlite:///<project root>/mlflow.db``.
  With a SQLite store, experiments are created with their artifacts in ``mlartifacts/`` next to
  the database file (``<project root>/mlartifacts`` by default), never in a ``./mlruns`` that
  depends on the working directory.
- Nothing here reaches the network: :func:`configure` turns MLflow telemetry off (unless the
  user opted in through ``MLFLOW_DISABLE_TELEMETRY``) and async logging off.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote

import mlflow
from mlflow import MlflowClient
from mlflow.telemetry import set_telemetry_client

DB_FILE = "mlflow.db"
ARTIFACTS_DIR = "mlartifacts"
ARTIFACT_ROOT_ENV = "GIRML_ARTIFACT_ROOT"  # artifact root for new experiments (e.g. s3://...)
# MLflow's switch for its own "View run/experiment" print (mlflow/environment_variables.py);
# girml.tracking.runs logs masked links instead
SUPPRESS_URL_PRINT = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"
# MLflow's own retries of HTTP requests to a tracking server (mlflow/environment_variables.py;
# its defaults: 7 retries, backoff factor 2, 120 s timeout), set by configure() when unset.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
}


class NotInStore(LookupError):
    """The tracking store has no such run, registered version or alias, or no artifacts under a
    path (or could not look it up); the message is MLflow's, or names what is missing."""


def tracking_uri(project_root: Path) -> str:
    """``MLFLOW_TRACKING_URI`` when set and not empty, else ``sqlite:///<root>/mlflow.db``.

    Note that :func:`configure` exports the URI it sets as ``MLFLOW_TRACKING_URI`` (MLflow does
    so for subprocesses), so within one process the first configured store wins.
    """
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{project_root.resolve() / DB_FILE}"


def _sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///path`` URI; None for other stores or in-memory SQLite."""
    prefix = "sqlite:///"
    path = unquote(uri[len(prefix) :].split("?", 1)[0]) if uri.startswith(prefix) else ""
    return Path(path) if path and path != ":memory:" else None


def store_exists(project_root: Path) -> bool:
    """False only for a SQLite store whose file does not exist (nothing is created to look)."""
    db = _sqlite_file(tracking_uri(project_root))
    return db is None or db.is_file()


def configure(project_root: Path) -> str:
    """Point MLflow at the project's tracking store, offline; returns the tracking URI.

    Sets MLflow's global tracking URI, ``MLFLOW_ENABLE_ASYNC_LOGGING=false``, MLflow's own
    "View run" print off (it shows the URI's password; :mod:`girml.tracking.runs` logs masked
    links instead) and, unless the user set them, ``MLFLOW_DISABLE_TELEMETRY=true`` and
    :data:`HTTP_DEFAULTS` (a tracking server that is down fails in seconds, not after MLflow's 7
    retries with backoff). Creates the SQLite file's folder if needed.
    """
    os.environ.update({"MLFLOW_ENABLE_ASYNC_LOGGING": "false", SUPPRESS_URL_PRINT: "true"})
    for name, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)
    if "MLFLOW_DISABLE_TELEMETRY" not in os.environ:
        os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
        set_telemetry_client()  # MLflow built its client at import; this re-reads the variable
    uri = tracking_uri(project_root)
    db = _sqlite_file(uri)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    return uri


def ensure_experiment(name: str, project_root: Path) -> str:
    """Return the id of experiment ``name``, creating (or restoring a deleted) one if needed.

    Configures the store first (:func:`configure`). A new experiment gets
    ``artifact_location`` = ``$GIRML_ARTIFACT_ROOT/<name>`` when that variable is set (e.g.
    ``s3://bucket/mlflow``, with ``MLFLOW_S3_ENDPOINT_URL`` for a non-AWS endpoint), else on a
    SQLite store ``<database folder>/mlartifacts`` as a ``file://`` URI; a tracking server
    otherwise chooses its own artifact location.
    """
    uri = configure(project_root)
    client = MlflowClient()
    found = client.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            client.restore_experiment(found.experiment_id)
        return str(found.experiment_id)
    db = _sqlite_file(uri)
    root = os.environ.get(ARTIFACT_ROOT_ENV)
    if root:  # e.g. s3://bucket/mlflow, with MLFLOW_S3_ENDPOINT_URL for a non-AWS endpoint
        location = f"{root.rstrip('/')}/{name}"
    elif db is not None:
        location = (db.resolve().parent / ARTIFACTS_DIR).as_uri()
    else:
        location = None
    return str(client.create_experiment(name, artifact_location=location))
