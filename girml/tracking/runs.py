"""MLflow runs: starting one (and closing those a dead process left RUNNING), adding to a
finished one, reading one back (its record, or from a server its experiment), and the masked
links a run logs when it ends.

When a run ends against a tracking server, MLflow prints ``View run <name> at: <url>`` and
``View experiment at: <url>`` to stdout itself (``TrackingServiceClient._log_url`` in
``mlflow/tracking/_tracking_service/client.py``), built from the tracking URI as given: with
``MLFLOW_TRACKING_URI=http://user:PASSWORD@host``, the password lands on the terminal, in
``dvc repro`` output and in CI logs. :func:`girml.tracking.store.configure` turns that print
off (:data:`~girml.tracking.store.SUPPRESS_URL_PRINT`, read by MLflow each time a run ends), and
a :class:`TrackedRun` logs the same two links when it ends, with no userinfo and secret
parameters masked (:func:`run_links`).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import mlflow
import psutil
import requests
from mlflow import MlflowClient
from mlflow.entities import RunStatus
from mlflow.exceptions import MlflowException

from girml.core.urls import mask_url
from girml.tracking.logs import flatten_params, log_metrics
from girml.tracking.store import ensure_experiment

log = logging.getLogger(__name__)

# Tags that name the process behind a run, so that a later start can tell a dead run from a
# live one (see close_stale_runs).
PID_TAG = "girml.pid"
HOST_TAG = "girml.host"
PID_STARTED_TAG = "girml.pid_started"  # the process's creation time (epoch seconds)
NOTE_TAG = "mlflow.note.content"  # the run's description in the MLflow UI


def server_url(tracking_uri: str) -> str | None:
    """The web address of an ``http(s)://`` tracking server, for links: its userinfo dropped,
    secret query values masked (:func:`girml.core.urls.mask_url`). None for other stores (SQLite,
    files), which have no web page."""
    if not tracking_uri.startswith(("http://", "https://")):
        return None
    parts = urlsplit(tracking_uri)
    host = parts.netloc.rpartition("@")[2]
    return mask_url(parts._replace(netloc=host, fragment="").geturl()).rstrip("/")


def run_links(tracking_uri: str, experiment_id: str, run_id: str) -> tuple[str, str] | None:
    """``(run URL, experiment URL)`` in the MLflow UI of ``tracking_uri``, credential-free, as
    MLflow builds them (``<server>/#/experiments/<id>[/runs/<run id>]``); None for a store
    without a web page."""
    base = server_url(tracking_uri)
    if base is None:
        return None
    experiment = f"{base}/#/experiments/{experiment_id}"
    return f"{experiment}/runs/{run_id}", experiment


def run_experiment_id(tracking_uri: str, run_id: str) -> str | None:
    """The experiment id of run ``run_id`` on the ``http(s)://`` tracking server
    ``tracking_uri``, or None when the server does not say within 3 s.

    One plain REST request (``/api/2.0/mlflow/runs/get``), not :class:`mlflow.MlflowClient`,
    whose retries and timeouts could hold the caller for a minute or more: the callers only
    want a better link. It authenticates as
    MLflow does, from ``MLFLOW_TRACKING_TOKEN`` or ``MLFLOW_TRACKING_USERNAME`` /
    ``MLFLOW_TRACKING_PASSWORD``.
    """
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    try:
        response = requests.get(
            f"{tracking_uri.rstrip('/')}/api/2.0/mlflow/runs/get",
            params={"run_id": run_id},
            headers={"Authorization": f"Bearer {token}"} if token else None,
            auth=(user, os.environ.get("MLFLOW_TRACKING_PASSWORD", "")) if user else None,
            timeout=3,
        )
        response.raise_for_status()
        return str(response.json()["run"]["info"]["experiment_id"])
    except (requests.RequestException, ValueError, KeyError, TypeError):
        return None


class TrackedRun(mlflow.ActiveRun):
    """An ``ActiveRun`` that ends KILLED, not FAILED, when left by a signal or Ctrl-C, and logs
    its masked links (:func:`run_links`) when it ends.

    ``KeyboardInterrupt`` and ``SystemExit`` with a non-zero code (``girml.core.process.Terminated``
    on SIGTERM is one) mean the run was stopped; any other exception means it failed.
    """

    def __exit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> bool:
        stopped = exc_type is not None and (
            issubclass(exc_type, KeyboardInterrupt)
            or (issubclass(exc_type, SystemExit) and exc_val.code not in (0, None))
        )
        active = mlflow.active_run()
        if stopped and active is not None and active.info.run_id == self.info.run_id:
            mlflow.end_run(RunStatus.to_string(RunStatus.KILLED))
        suppressed = bool(super().__exit__(exc_type, exc_val, exc_tb))
        links = run_links(mlflow.get_tracking_uri(), self.info.experiment_id, self.info.run_id)
        if links is not None:
            log.info("View run %s at: %s (experiment: %s)", self.info.run_name, *links)
        return suppressed


def start_run(
    experiment: str,
    project_root: Path,
    run_name: str | None = None,
    tags: Mapping[str, str] | None = None,
    log_system_metrics: bool = True,
    nested: bool = False,
) -> mlflow.ActiveRun:
    """Start a run in ``experiment`` (created if needed); use it as a context manager.

    The run ends when the ``with`` block does: FINISHED, FAILED if the block raised, KILLED if
    it was left by Ctrl-C or a signal turned into ``SystemExit`` (``girml.core.process``). The run
    records its process (PID, host, start time) as tags, and runs of the experiment left
    RUNNING by a process that is gone are first closed as KILLED (:func:`close_stale_runs`).

    Args:
        experiment: experiment name.
        project_root: where the default tracking store lives (see
            :func:`girml.tracking.store.tracking_uri`).
        run_name: display name; MLflow picks one when None.
        tags: e.g. ``provenance_tags(...)`` plus the stage name.
        log_system_metrics: sample CPU/RAM/disk (psutil) into ``system/*`` metrics.
        nested: start a child of the active run (e.g. one tuning trial).

    Returns:
        MLflow's ``ActiveRun``; ``run.info.run_id`` identifies it.
    """
    experiment_id = ensure_experiment(experiment, project_root)
    closed = close_stale_runs(experiment_id)
    if closed:
        log.warning(
            "closed %d run(s) left RUNNING by a process that is gone, as KILLED: %s",
            len(closed),
            ", ".join(closed),
        )
    run = mlflow.start_run(
        experiment_id=experiment_id,
        run_name=run_name,
        tags={**dict(tags or {}), **_process_tags()},
        nested=nested,
        log_system_metrics=log_system_metrics,
    )
    return TrackedRun(run)


def _process_tags() -> dict[str, str]:
    me = psutil.Process()
    return {
        PID_TAG: str(me.pid),
        HOST_TAG: socket.gethostname(),
        PID_STARTED_TAG: f"{me.create_time():.2f}",
    }


def _process_alive(pid: int, started: float | None) -> bool:
    """Whether ``pid`` runs and, when ``started`` is known, is the same process (not a reuse)."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or abs(proc.create_time() - started) < 1.0
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # someone else's live process
        return True


def close_stale_runs(experiment_id: str) -> list[str]:
    """Mark KILLED the RUNNING runs of ``experiment_id`` whose process on this host is gone.

    A run started by :func:`start_run` records its PID, host and process start time as tags; a
    process killed by ``kill -9`` (or a crash of the interpreter) cannot end its run, which stays
    RUNNING forever. Such a run is closed here with a note in its description. Runs of other
    hosts, runs without these tags and runs whose process still lives are left alone.

    Returns:
        The ids of the runs closed.
    """
    client = MlflowClient()
    host = socket.gethostname()
    closed = []
    stale = client.search_runs(
        [experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=1000
    )
    for run in stale:
        tags = run.data.tags
        pid = tags.get(PID_TAG, "")
        if tags.get(HOST_TAG) != host or not pid.isdigit():
            continue
        try:
            started: float | None = float(tags.get(PID_STARTED_TAG, ""))
        except ValueError:
            started = None
        if _process_alive(int(pid), started):
            continue
        note = (
            f"Closed as KILLED by girml on {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC: "
            f"the process that ran it (PID {pid} on {host}) had ended without closing it "
            "(killed with -9, out of memory, or a crash)."
        )
        previous = tags.get(NOTE_TAG)
        client.set_tag(run.info.run_id, NOTE_TAG, f"{previous}\n\n{note}" if previous else note)
        client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.KILLED))
        closed.append(run.info.run_id)
    return closed


def resume_run(run_id: str) -> mlflow.ActiveRun:
    """Reopen run ``run_id`` (e.g. a finished training run) to add to it, as the active run;
    use it as a context manager. MLflow ends it again when the block ends. No system metrics
    are sampled. The store must be configured (:func:`girml.tracking.store.configure`)."""
    return mlflow.start_run(run_id=run_id, log_system_metrics=False)


def log_to_run(
    run_id: str,
    *,
    tags: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
    metrics: Mapping[str, float] | None = None,
    artifact_files: Sequence[Path] = (),
    artifacts_dir: Path | None = None,
    artifact_path: str | None = None,
) -> None:
    """Add to run ``run_id`` (e.g. a finished training run) through :func:`resume_run`.

    Args:
        run_id: the run to add to.
        tags: set as run tags (tags, unlike params, may be set again with a new value).
        params: logged flattened (:func:`girml.tracking.logs.flatten_params`).
        metrics: scalar metrics, logged at step 0.
        artifact_files: files to attach, under ``artifact_path``.
        artifacts_dir: a folder whose content is attached under ``artifact_path``.
        artifact_path: the artifact folder within the run; None for its root.
    """
    with resume_run(run_id):
        if tags:
            mlflow.set_tags(dict(tags))
        if params:
            mlflow.log_params(flatten_params(params))
        if metrics:
            log_metrics(0, metrics)
        for path in artifact_files:
            mlflow.log_artifact(str(path), artifact_path=artifact_path)
        if artifacts_dir is not None:
            mlflow.log_artifacts(str(artifacts_dir), artifact_path=artifact_path)


@dataclass(frozen=True)
class RunRecord:
    """What a finished run recorded: tags, params and the last value of each metric."""

    run_id: str
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]


def run_record(run_id: str) -> RunRecord:
    """Tags, params and latest metrics of run ``run_id`` (the store must be configured).

    Raises:
        ValueError: the store has no such run (the message names it).
    """
    try:
        run = MlflowClient().get_run(run_id)
    except MlflowException as exc:
        raise ValueError(f"MLflow run {run_id}: {exc.message}") from None
    data = run.data
    return RunRecord(run_id, dict(data.tags), dict(data.params), dict(data.metrics))
