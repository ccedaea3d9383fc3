"""The runs that :func:`girml.tracking.mlflow.start_run` returns, and their masked links.

When a run ends against a tracking server, MLflow prints ``View run <name> at: <url>`` and
``View experiment at: <url>`` to stdout itself (``TrackingServiceClient._log_url`` in
``mlflow/tracking/_tracking_service/client.py``), built from the tracking URI as given: with
``MLFLOW_TRACKING_URI=http://user:PASSWORD@host``, the password lands on the terminal, in
``dvc repro`` output and in CI logs. :func:`girml.tracking.mlflow.configure` turns that print
off (:data:`SUPPRESS_URL_PRINT`, read by MLflow each time a run ends), and a :class:`TrackedRun`
logs the same two links when it ends, with no userinfo and secret parameters masked
(:func:`run_links`).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

import mlflow
from mlflow.entities import RunStatus

from girml.urls import mask_url

log = logging.getLogger(__name__)

# MLflow's switch for its own "View run/experiment" print (mlflow/environment_variables.py)
SUPPRESS_URL_PRINT = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"


def server_url(tracking_uri: str) -> str | None:
    """The web address of an ``http(s)://`` tracking server, for links: its userinfo dropped,
    secret query values masked (:func:`girml.urls.mask_url`). None for other stores (SQLite,
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


class TrackedRun(mlflow.ActiveRun):
    """An ``ActiveRun`` that ends KILLED, not FAILED, when left by a signal or Ctrl-C, and logs
    its masked links (:func:`run_links`) when it ends.

    ``KeyboardInterrupt`` and ``SystemExit`` with a non-zero code (``girml.process.Terminated``
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
