"""Runs (girml/tracking/runs.py): started, added to and read back in a real SQLite store; and
against a live tracking server whose URI carries a canary password, never on screen.

Real parts: ``mlflow server`` on a free port with a SQLite store (it ignores the basic auth that
the client sends from the URI's ``user:password@``), girml's tracking code in this process, and
MLflow's own printing of "View run ... at" links when a run ends. Runs left RUNNING by a killed
process: tests/test_process.py.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
import requests
from mlflow import MlflowClient

from girml.tracking.logs import log_metrics, log_params_flat
from girml.tracking.runs import (
    HOST_TAG,
    PID_TAG,
    log_to_run,
    run_experiment_id,
    run_links,
    run_record,
    server_url,
    start_run,
)
from girml.tracking.store import SUPPRESS_URL_PRINT, configure
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
def tracking_server(tmp_path_factory: pytest.TempPathFactory, mlflow_schema: Path) -> Iterator[str]:
    """``mlflow server`` (SQLite store, artifacts proxied) on 127.0.0.1; yields its URL.

    It runs in a session of its own, so that the group kill at the end reaches its worker.
    """
    root = tmp_path_factory.mktemp("mlflow-server")
    shutil.copyfile(mlflow_schema, root / "mlflow.db")
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
        with start_run("gir", tmp_path, run_name="train", log_system_metrics=False) as run:
            log_params_flat({"train": {"steps": 2}})
            log_metrics(2, {"loss": 0.25})
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


def test_run_experiment_id_from_a_live_server_or_none_when_it_cannot_say(
    tracking_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = MlflowClient(tracking_server)
    experiment_id = client.create_experiment("girml-experiment-of-run")
    run_id = client.create_run(experiment_id).info.run_id
    host = tracking_server.removeprefix("http://")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")  # sent; this server ignores it
    assert run_experiment_id(f"http://alice:{CANARY}@{host}/", run_id) == experiment_id
    assert run_experiment_id(tracking_server, "0" * 32) is None  # the server says 404
    assert run_experiment_id(f"http://127.0.0.1:{free_port()}", run_id) is None  # nobody there


def test_a_run_carries_its_tags_and_process_and_ends_failed_on_an_error(
    mlflow_store: Path,
) -> None:
    with start_run("girml-test", mlflow_store, tags={"stage": "train"}) as run:
        pass
    record = run_record(run.info.run_id)
    assert record.tags["stage"] == "train"
    assert record.tags[PID_TAG] == str(os.getpid())
    assert record.tags[HOST_TAG] == socket.gethostname()
    assert MlflowClient().get_run(run.info.run_id).info.status == "FINISHED"
    with (
        pytest.raises(RuntimeError, match="boom"),
        start_run("girml-test", mlflow_store, log_system_metrics=False) as failed,
    ):
        raise RuntimeError("boom")
    assert MlflowClient().get_run(failed.info.run_id).info.status == "FAILED"


def test_log_to_run_adds_to_a_finished_run(mlflow_store: Path, tmp_path: Path) -> None:
    with start_run("girml-test", mlflow_store, log_system_metrics=False) as run:
        log_metrics(5, {"loss": 0.5})
    report = tmp_path / "report"
    (report / "figures").mkdir(parents=True)
    (report / "index.html").write_text("<p>report</p>", encoding="utf-8")
    (report / "figures" / "a.txt").write_text("a", encoding="utf-8")
    (tmp_path / "eval.json").write_text("{}", encoding="utf-8")
    log_to_run(
        run.info.run_id,
        tags={"champion.promoted": "false"},
        params={"evaluate": {"suites": ["whole"]}},
        metrics={"gir_score": 2.5, "flag": True},
        artifact_files=[tmp_path / "eval.json"],
        artifacts_dir=report,
        artifact_path="evaluation",
    )
    record = run_record(run.info.run_id)
    assert record.tags["champion.promoted"] == "false"
    assert record.params == {"evaluate.suites": '["whole"]'}
    assert record.metrics == {"loss": 0.5, "gir_score": 2.5, "flag": 1.0}
    client = MlflowClient()
    assert [m.step for m in client.get_metric_history(run.info.run_id, "gir_score")] == [0]
    listed = {a.path for a in client.list_artifacts(run.info.run_id, "evaluation")}
    assert listed == {"evaluation/eval.json", "evaluation/index.html", "evaluation/figures"}
    assert client.get_run(run.info.run_id).info.status == "FINISHED"  # ended again


def test_run_record_names_a_missing_run(mlflow_store: Path) -> None:
    configure(mlflow_store)
    with pytest.raises(ValueError, match="MLflow run 0123456789abcdef"):
        run_record("0123456789abcdef")
