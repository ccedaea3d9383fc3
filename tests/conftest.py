"""Shared pytest fixtures: the tiny degradation spec and local stand-ins for network services."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from girml.config import DegradationsConfig, parse_section
from tests.factories import tiny_params


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
