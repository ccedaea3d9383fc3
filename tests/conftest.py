"""Shared pytest fixtures: the tiny degradation spec and local stand-ins for network services."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow
import pytest

from girml.config import DegradationsConfig, parse_section
from tests.factories import tiny_params


@pytest.fixture
def mlflow_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh SQLite MLflow store for one test (offline, version numbers start at 1), in
    ``tmp_path/mlflow.db``; yields ``tmp_path``."""
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
