"""Process hygiene for the long stages: one run per folder, signals that unwind, no orphans.

- :func:`stage_lock`: an exclusive ``fcntl.flock`` on a lock file, so that two runs of one stage
  in one folder cannot write the same checkpoints and outputs. The file records the holder (PID,
  host, start time, command) for the error message. The kernel drops the lock when the holder
  dies, even by ``kill -9``: a leftover file whose process is gone is not a lock.
- :func:`sigterm_raises`: SIGTERM (and SIGHUP) raise :class:`Terminated` in the main thread, so
  ``with``/``finally`` blocks run (an MLflow run ends ``KILLED``, staging folders are removed,
  a local Ray is shut down) and the process exits with 128 + the signal number, as if killed.
- :func:`die_with_parent`: a pool worker asks the kernel for SIGTERM when its parent dies, so a
  ``kill -9`` of the parent leaves no worker behind (Linux; elsewhere it only checks the parent).
  :func:`end_with_parent` asks the same but keeps this process's SIGTERM handling: a training
  rank of ``torchrun`` (which starts its ranks in sessions of their own) unwinds when the
  launcher is killed.
- :func:`start_reaper`: for children that cannot be changed (a local Ray's agents outlive a
  ``kill -9`` of the driver), a small watchdog process ends this process's descendants once
  this process is gone.

The lock is advisory and works within one machine; on NFS ``flock`` may not be honoured across
clients.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import psutil

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


@dataclass(frozen=True)
class LockHolder:
    """Who holds a stage lock, as recorded in its lock file."""

    pid: int | None
    host: str
    started: str  # ISO 8601, UTC
    command: str

    def describe(self) -> str:
        """``PID 1234 on host, started 2025-01-01T10:00:00+00:00, command: girml train``."""
        where = f" on {self.host}" if self.host and self.host != socket.gethostname() else ""
        pid = f"PID {self.pid}" if self.pid is not None else "PID unknown"
        return f"{pid}{where}, started {self.started or 'unknown'}, command: {self.command or '?'}"


class StageBusy(RuntimeError):
    """Another live process holds the stage's lock."""

    def __init__(self, stage: str, path: Path, holder: LockHolder) -> None:
        self.stage, self.path, self.holder = stage, path, holder
        kill = f" (kill {holder.pid})" if holder.pid is not None else ""
        super().__init__(
            f"girml {stage} is already running in this folder ({holder.describe()}); wait for it "
            f"(or pass --wait) or stop it{kill}. Lock file: {path}"
        )


def read_holder(path: Path) -> LockHolder:
    """The holder recorded in lock file ``path`` (fields empty when unreadable or blank)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        raw = {}
    if not isinstance(raw, dict):
        raw = {}
    pid = raw.get("pid")
    return LockHolder(
        pid=pid if isinstance(pid, int) else None,
        host=str(raw.get("host", "")),
        started=str(raw.get("started", "")),
        command=str(raw.get("command", "")),
    )


@contextmanager
def stage_lock(path: Path, stage: str, wait: bool = False) -> Iterator[LockHolder]:
    """Hold an exclusive lock on ``path`` for the ``with`` block; one holder per file.

    Args:
        path: the lock file (created with its folder if needed; never deleted, since removing
            a lock file while another process waits on it would let a third one in).
        stage: the stage's name, for the message (``"train"``).
        wait: block until the current holder ends instead of failing at once.

    Yields:
        This process's :class:`LockHolder` record.

    Raises:
        StageBusy: ``wait`` is False and a live process holds the lock; the message names its
            PID, start time and command.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            busy = StageBusy(stage, path, read_holder(path))
            if not wait:
                raise busy from None
            log.warning("waiting: %s", busy.holder.describe())
            fcntl.flock(fd, fcntl.LOCK_EX)
        me = LockHolder(
            pid=os.getpid(),
            host=socket.gethostname(),
            started=datetime.now(UTC).isoformat(timespec="seconds"),
            command=" ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else "",
        )
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(me.__dict__) + "\n").encode(), 0)
        try:
            yield me
        finally:
            os.ftruncate(fd, 0)  # a released lock names no holder
    finally:
        os.close(fd)  # closing the only descriptor releases the flock


class Terminated(SystemExit):
    """Raised by :func:`sigterm_raises` when the process gets SIGTERM or SIGHUP.

    A ``SystemExit`` (with code 128 + the signal number), so ``except Exception`` does not
    swallow it, ``finally`` blocks run and the process exits as if the signal had killed it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum

    def __str__(self) -> str:
        return f"stopped by {signal.Signals(self.signum).name}"


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise :class:`Terminated` in the main thread.

    Outside the main thread (where Python cannot install handlers) this does nothing. The
    previous handlers come back at the end. Child processes forked inside the block inherit the
    handler: pool workers should reset it (:func:`die_with_parent` does).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signums = [signal.SIGTERM, signal.SIGHUP]
    previous = {signum: signal.signal(signum, _raise_terminated) for signum in signums}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def die_with_parent(parent_pid: int) -> None:
    """Make this (child) process end when ``parent_pid``, its parent, ends, even by ``kill -9``.

    On Linux the kernel sends SIGTERM at the parent's death (``prctl(PR_SET_PDEATHSIG)``; note
    that it fires when the parent *thread* that forked this process exits). SIGTERM and SIGHUP
    get their default action back (a forked child inherits the parent's Python handlers, which
    would turn the signal into an exception that a pool worker catches and survives). If the
    parent is already gone (it died before the request), the process exits at once.
    """
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)
    end_with_parent(parent_pid)


def end_with_parent(parent_pid: int) -> None:
    """Ask the kernel for SIGTERM when ``parent_pid``, this process's parent, ends (Linux).

    Signal handlers are left as they are (under :func:`sigterm_raises` the process unwinds:
    its MLflow run ends ``KILLED`` and its lock is released). If the parent is already gone,
    the process exits at once.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
                log.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
        except (OSError, AttributeError) as exc:  # no libc.prctl (e.g. a static build)
            log.warning("cannot ask to die with the parent: %s", exc)
    if os.getppid() != parent_pid:  # the parent died before prctl: nobody would signal us
        os._exit(128 + signal.SIGTERM)


def start_reaper() -> subprocess.Popen[bytes]:
    """Start a watchdog that ends this process's descendants once this process has ended.

    The watchdog notes this process's descendants (with their start times) every second, and
    when its stdin pipe from this process reaches end of file (this process exited, even by
    ``kill -9``), it sends SIGTERM, then SIGKILL after 3 s, to those still running. Call
    :func:`stop_reaper` after a clean shutdown. The watchdog runs in its own session, so a
    Ctrl-C at the terminal does not stop it before it has done its job.
    """
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from girml.core.process import reap_after_parent; reap_after_parent()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )


def stop_reaper(reaper: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    """Close the watchdog's pipe (it ends any descendant still running) and wait for it."""
    if reaper.stdin is not None:
        reaper.stdin.close()
    try:
        reaper.wait(timeout_s)
    except subprocess.TimeoutExpired:
        reaper.kill()
        reaper.wait()


def reap_after_parent(poll_s: float = 1.0, grace_s: float = 3.0) -> None:
    """The watchdog's body (:func:`start_reaper`); reads stdin until end of file."""
    parent = psutil.Process(os.getppid())
    me = os.getpid()
    seen: dict[int, psutil.Process] = {}
    stdin = sys.stdin.buffer
    while True:
        try:
            for child in parent.children(recursive=True):
                if child.pid != me:
                    seen.setdefault(child.pid, child)
        except psutil.Error:  # the parent is gone
            pass
        ready, _, _ = select.select([stdin], [], [], poll_s)
        if ready and not os.read(stdin.fileno(), 4096):
            break
    # psutil.Process checks the start time, so a reused PID is never signalled
    alive = [proc for proc in seen.values() if proc.is_running()]
    for proc in alive:
        with suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(alive, timeout=grace_s)
    for proc in alive:
        with suppress(psutil.Error):
            proc.kill()
