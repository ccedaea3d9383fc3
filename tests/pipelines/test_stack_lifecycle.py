"""Bringing the stack up and down (pipelines/stack_lifecycle.py); the real services:
tests/pipelines/test_stack.py."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import psutil
import pytest

from pipelines.stack_lifecycle import (
    StackError,
    exports,
    recorded_stack,
    stack_status,
    start_stack,
    stop_stack,
)
from pipelines.stack_services import Ports
from tests.conftest import free_port


def test_stop_and_status_ignore_a_stale_pid_file(tmp_path: Path) -> None:
    (tmp_path / "s3.pid").write_text(f"{os.getpid()}\n")  # a stale pid file: this pytest
    assert stop_stack(tmp_path) == []
    assert psutil.pid_exists(os.getpid()) and not (tmp_path / "s3.pid").exists()
    assert [row[2] for row in stack_status(tmp_path)] == [False, False, False]


def test_up_refuses_a_taken_port(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        ports = Ports(s3=port, mlflow=free_port(), prefect=free_port())
        with pytest.raises(StackError, match=f"s3 port {port} already in use"):
            start_stack(tmp_path, ports, "girml", echo=lambda _: None)
    assert not list(tmp_path.glob("*.pid"))
    assert recorded_stack(tmp_path) is None  # nothing was recorded either


def test_exports_are_shell_quoted() -> None:
    text = exports({"A": "plain", "B": "two words", "C": "it's"})
    assert text == "export A=plain\nexport B='two words'\nexport C='it'\"'\"'s'\n"
