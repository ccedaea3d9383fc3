"""Runs against a live tracking server whose URI carries a canary password: never on screen.

Real parts: ``mlflow server`` on a free port with a SQLite store (it ignores the basic auth that
the client sends from the URI's ``user:password@``), girml's tracking code in this process, and
MLflow's own printing of "View run ... at" links when a run ends.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
import requests
from mlflow import MlflowClient

from girml.tracking import mlflow as tracking
from girml.tracking.runs import SUPPRESS_URL_PRINT, run_links, server_url
from tests.conftest import free_port
from tests.factories import wait_for

CANARY = "CANARY-pw-9c1d2e3f"

pytestmark = pytest.mark.usefixtures("restore_environ")  # configure() exports variables


def _healthy(url: str) -> bool:
    try:
        return requests.get(f"{url}/health", timeout=2).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``mlflow server`` (SQLite store, artifacts proxied) on 127.0.0.1; yields its URL.

    It runs in a session of its own, so that the group kill at the end reaches its worker.
    """
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port)]
    args += ["--workers", "1", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}"]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.Popen(
        args,
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        wait_for(lambda: _healthy(url), proc, timeout_s=120, poll_s=0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        proc.stderr.close()


def test_server_url_drops_userinfo_and_masks_secret_parameters() -> None:
    assert server_url(f"http://alice:{CANARY}@h:5000/") == "http://h:5000"
    assert server_url(f"https://{CANARY}@h/mlflow?token={CANARY}") == "https://h/mlflow?token=***"
    assert server_url("sqlite:////tmp/mlflow.db") is None
    assert run_links(f"http://u:{CANARY}@h:5000", "3", "abc") == (
        "http://h:5000/#/experiments/3/runs/abc",
        "http://h:5000/#/experiments/3",
    )


def test_a_tracked_run_on_a_live_server_never_shows_the_password(
    tracking_server: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    host = tracking_server.removeprefix("http://")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://alice:{CANARY}@{host}")
    monkeypatch.delenv(SUPPRESS_URL_PRINT, raising=False)
    caplog.set_level(logging.INFO)
    before = mlflow.get_tracking_uri()
    try:
        # what `girml train` does: a run with params and metrics, ended by its `with` block
        with tracking.start_run("gir", tmp_path, run_name="train", log_system_metrics=False) as run:
            tracking.log_params_flat({"train": {"steps": 2}})
            tracking.log_metrics(2, {"loss": 0.25})
        # what `girml evaluate` does: append to the train run, which MLflow ends again
        with mlflow.start_run(run_id=run.info.run_id, log_system_metrics=False):
            mlflow.set_tag("evaluated", "yes")
    finally:
        mlflow.set_tracking_uri(before)
    out, err = capfd.readouterr()
    logged = caplog.text + "\n".join(record.getMessage() for record in caplog.records)
    for text in (out, err, logged):
        assert CANARY not in text
    assert "View run" not in out  # MLflow's own print (with the password) is off
    experiment = f"{tracking_server}/#/experiments/{run.info.experiment_id}"
    assert f"View run train at: {experiment}/runs/{run.info.run_id} (experiment: {experiment})" in (
        logged
    )
    # the run reached the server through the URI with credentials
    stored = MlflowClient(tracking_server).get_run(run.info.run_id)
    assert stored.data.metrics["loss"] == 0.25 and stored.data.tags["evaluated"] == "yes"
