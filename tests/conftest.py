"""Shared pytest fixtures: the tiny degradation spec, local stand-ins for network services and a
headless browser with the network blocked."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import pytest
from _pytest.logging import LogCaptureHandler

from girml.config import DegradationsConfig, parse_section
from tests.factories import tiny_params

if TYPE_CHECKING:
    from tests.browser import Browser, Chromium


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """Give the root logger its handlers and level back after each test.

    A library that configures logging in-process changes the root logger for every later test:
    Prefect, when first imported (``prefect.main``, e.g. by ``girml flow`` under ``CliRunner``),
    replaces the root's handlers with a console handler bound to that moment's ``sys.stderr``,
    a ``CliRunner`` stream that is closed once the call returns. A later test's warning then
    prints "--- Logging error ---" and a traceback into its own output. pytest's per-phase
    capture handlers (:class:`LogCaptureHandler`) are pytest's to add and remove.
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    if root.level != level:
        root.setLevel(level)
    captured = [h for h in root.handlers if isinstance(h, LogCaptureHandler)]
    kept = [h for h in handlers if not isinstance(h, LogCaptureHandler)]
    if root.handlers != kept + captured:
        root.handlers[:] = kept + captured


@pytest.fixture(scope="session")
def mlflow_schema(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite MLflow store with every table made and no experiment yet, for copying.

    A new SQLite store runs all of MLflow's schema migrations (2-4 s on 2 cores), once per
    store; a copy of this one opens at once. MLflow adds the Default experiment at the copy's
    first use, under that process's artifact root, as it does in a new store.
    """
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    path = tmp_path_factory.mktemp("mlflow-schema") / "mlflow.db"
    SqlAlchemyStore(f"sqlite:///{path}", str(path.parent / "mlruns")).engine.dispose()
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("DELETE FROM experiments")  # the Default one: made again where it is used
    return path


@pytest.fixture
def mlflow_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mlflow_schema: Path
) -> Iterator[Path]:
    """A fresh SQLite MLflow store for one test (offline, version numbers start at 1), in
    ``tmp_path/mlflow.db`` (a copy of :func:`mlflow_schema`); yields ``tmp_path``."""
    shutil.copyfile(mlflow_schema, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    before = mlflow.get_tracking_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    mlflow.set_tracking_uri(uri)
    yield tmp_path
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(before)


@pytest.fixture(scope="session")
def spec() -> DegradationsConfig:
    """The degradation spec of :func:`tests.factories.tiny_params`."""
    return parse_section(tiny_params()["degradations"], "degradations", DegradationsConfig)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def free_tcp_port() -> int:
    """A TCP port on 127.0.0.1 with nothing listening (at the time of the call)."""
    return free_port()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A real S3-compatible HTTP endpoint (moto server) on 127.0.0.1; yields its URL.

    State is shared by the whole session: tests should use their own bucket names.
    """
    moto_server = pytest.importorskip("moto.server")
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point boto3 at :func:`s3_server` with dummy credentials for one test; returns the URL."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return s3_server


@contextmanager
def s3_client_env(
    endpoint: str, home: Path, key_id: str = "testing", secret: str = "testing"
) -> Iterator[dict[str, str]]:
    """Point boto3, DVC and MLflow at ``endpoint`` with fake credentials, a bare ``HOME`` (no
    ~/.aws, no git config) and quiet tools, until the block ends; yields the S3 variables."""
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": key_id,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "MLFLOW_S3_ENDPOINT_URL"):
            patch.delenv(name, raising=False)
        for name, value in env.items():
            patch.setenv(name, value)
        patch.setenv("HOME", str(home))
        patch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        patch.setenv("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
        patch.setenv("DVC_NO_ANALYTICS", "1")
        yield env


@pytest.fixture
def restore_environ() -> Iterator[None]:
    """Undo what a test's commands set in ``os.environ`` (``girml pull`` sets S3 defaults)."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    """One headless Chromium for the session, network blocked (:mod:`tests.browser`); the test
    skips where Chromium is missing, or fails when ``CI`` is set."""
    from tests.browser import Chromium, chromium_executable

    started = Chromium(chromium_executable(), tmp_path_factory.mktemp("chromium"))
    yield started
    started.close()


@pytest.fixture
def browser(chromium: Chromium) -> Browser:
    """The session's Chromium, started again if an earlier test ended it."""
    return chromium.get()
