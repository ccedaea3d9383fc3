"""The stack's processes and ports (pipelines/stack_processes.py)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from pipelines.stack_processes import (
    any_free_port,
    group_members,
    log_tail,
    move_taken_ports,
    pid_file,
    port_free,
    read_pid,
    service_process,
    stop_group,
)
from pipelines.stack_services import Ports
from tests.conftest import free_port


def test_stop_group_leaves_foreign_processes_alone() -> None:
    assert stop_group(os.getpid(), "moto.server") is False  # this pytest is no S3 server
    assert service_process(os.getpid(), "moto.server") is None
    assert service_process(None, "pytest") is None


def test_taken_default_ports_move_chosen_ones_do_not() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        free = free_port()
        wanted = Ports(s3=taken, mlflow=taken, prefect=free)
        ports, notes = move_taken_ports(wanted, movable=["s3", "prefect"])
        assert ports.mlflow == taken and ports.prefect == free  # chosen by the user; free
        assert ports.s3 != taken and notes == [f"s3: port {taken} is taken, using {ports.s3}"]
        assert move_taken_ports(wanted, ["s3"], keep=["s3"])[0].s3 == taken  # already ours


def test_a_free_port_is_free_and_a_listening_one_is_not() -> None:
    port = any_free_port()
    assert port_free(port)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        assert not port_free(port)


def test_pid_files_and_log_tails(tmp_path: Path) -> None:
    assert read_pid(tmp_path, "s3") is None
    pid_file(tmp_path, "s3").write_text("not a pid\n")
    assert read_pid(tmp_path, "s3") is None
    pid_file(tmp_path, "s3").write_text("4242\n")
    assert read_pid(tmp_path, "s3") == 4242
    assert log_tail(tmp_path / "missing.log") == ""
    (tmp_path / "s3.log").write_text("".join(f"line {i}\n" for i in range(30)))
    assert log_tail(tmp_path / "s3.log", lines=2) == "line 28\nline 29"


def test_stop_group_ends_a_service_and_its_children(tmp_path: Path) -> None:
    """A real process group led by a process whose command line carries the marker."""
    code = (
        "import subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "time.sleep(60)  # girml-stack-test\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while len(group_members(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)  # until the leader runs its code and has started its child
        assert service_process(proc.pid, "girml-stack-test") is not None
        assert len(group_members(proc.pid)) == 2
        assert stop_group(proc.pid, "girml-stack-test", timeout_s=10)
        assert proc.wait(timeout=10) is not None and group_members(proc.pid) == []
        assert service_process(proc.pid, "girml-stack-test") is None
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
