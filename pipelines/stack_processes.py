"""The stack's processes and ports on loopback: pid files, telling a live service from a stale
pid, stopping a service's whole process group, and free or taken ports."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Collection
from dataclasses import replace
from pathlib import Path

import psutil
import requests

from pipelines.stack_services import HOST, Ports

LOG_TAIL_LINES = 20


def pid_file(state_dir: Path, name: str) -> Path:
    """Where the pid of service ``name`` is kept."""
    return state_dir / f"{name}.pid"


def read_pid(state_dir: Path, name: str) -> int | None:
    """The pid recorded for service ``name`` (None when there is none or it is unreadable)."""
    try:
        return int(pid_file(state_dir, name).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _live(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def service_process(pid: int | None, marker: str) -> psutil.Process | None:
    """The live process ``pid`` if its command line contains ``marker`` (else a stale pid)."""
    if pid is None:
        return None
    try:
        proc = psutil.Process(pid)
        cmdline = " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return proc if marker in cmdline and _live(proc) else None


def group_members(pgid: int) -> list[psutil.Process]:
    """Live (non-zombie) processes of process group ``pgid``."""
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and _live(proc):
                members.append(proc)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return members


def stop_group(pid: int, marker: str, timeout_s: float = 15.0) -> bool:
    """SIGTERM the process group led by ``pid`` (our service), then SIGKILL what is left.

    Returns:
        False when ``pid`` is not a live process of this service (nothing was signalled).
    """
    if service_process(pid, marker) is None:
        return False
    for sig, wait_s in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + wait_s
        while group_members(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if not group_members(pid):
            return True
    return True


def answers(url: str, timeout_s: float = 2.0) -> bool:
    """True when ``url`` answers HTTP with a status below 500."""
    try:
        return requests.get(url, timeout=timeout_s).status_code < 500
    except requests.RequestException:
        return False


def port_free(port: int) -> bool:
    """True when nothing listens on ``127.0.0.1:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex((HOST, port)) != 0


def any_free_port() -> int:
    """A loopback port with nothing listening (the kernel's choice, at the time of the call)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def move_taken_ports(
    ports: Ports, movable: Collection[str], keep: Collection[str] = ()
) -> tuple[Ports, list[str]]:
    """``ports`` with each taken port of a ``movable`` service replaced by a free one.

    Args:
        ports: the wanted ports.
        movable: names of the services whose port was not chosen by the user (``s3``...).
        keep: names of services that already run (their port is theirs, never moved).

    Returns:
        The ports to use and one message per moved port.
    """
    moved: dict[str, int] = {}
    notes = []
    for name in ("s3", "mlflow", "prefect"):
        port = getattr(ports, name)
        if name in movable and name not in keep and not port_free(port):
            moved[name] = any_free_port()
            notes.append(f"{name}: port {port} is taken, using {moved[name]}")
    return replace(ports, **moved), notes


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file ('' when it does not exist)."""
    if not path.is_file():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
