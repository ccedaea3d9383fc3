"""The Ray the search runs on: joined or started, and stopped again.

- ``RAY_ADDRESS`` (else ``tune.address``) joins an existing cluster at its GCS address
  (``host:port``); a cluster with token authentication (what ``ray start`` does by default
  since Ray 2.59) also needs ``RAY_AUTH_MODE=token`` and its token (``RAY_AUTH_TOKEN`` or
  ``RAY_AUTH_TOKEN_PATH``), else the join fails with :class:`girml.core.errors.ServiceUnreachable`
  saying so. Otherwise a local Ray is started on every core and shut down at the end.
- Ray's usage statistics are disabled (``RAY_USAGE_STATS_ENABLED=0``, unless set) since the
  pipeline runs offline, and Ray saves its experiment state at most every
  ``TUNE_GLOBAL_CHECKPOINT_S`` seconds (set to 2 here unless set).
- On a cluster, every node needs ``girml`` installed, the pairs at the same path and the
  search's ``work_dir`` on a shared file system (trial checkpoints live there).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import ray

from girml.core.errors import ServiceUnreachable
from girml.core.process import start_reaper, stop_reaper

RAY_ENV_DEFAULTS = {"RAY_USAGE_STATS_ENABLED": "0", "TUNE_GLOBAL_CHECKPOINT_S": "2"}


@contextmanager
def ray_environment() -> Iterator[None]:
    """Set :data:`RAY_ENV_DEFAULTS` where unset (offline Ray, prompt experiment saves)."""
    added = [name for name in RAY_ENV_DEFAULTS if name not in os.environ]
    for name in added:
        os.environ[name] = RAY_ENV_DEFAULTS[name]
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


@contextmanager
def ray_session(address: str | None) -> Iterator[None]:
    """Use the running Ray, else join ``RAY_ADDRESS``/``address``, else start a local one.

    A session started here is shut down (or disconnected from the cluster) on exit, also on an
    exception or a signal turned into one (``girml.core.process.sigterm_raises``). A local Ray also
    gets a watchdog (:func:`girml.core.process.start_reaper`): Ray's own fate sharing ends the
    raylet and workers with a driver killed by ``kill -9``, but its dashboard and runtime-env
    agents would live on.
    """
    if ray.is_initialized():
        yield
        return
    join = os.environ.get("RAY_ADDRESS") or address or None
    if join is not None and join.startswith("ray://"):
        raise ValueError(
            f"RAY_ADDRESS/tune.address {join}: Ray Client (ray://) needs ray[client], which the "
            "lock file does not install; use the cluster's GCS address (host:6379)"
        )
    reaper = None if join else start_reaper()
    sigterm = signal.getsignal(signal.SIGTERM)
    try:
        try:
            # a local Ray (no address) detects every core the process may use, cgroup limits
            # included
            ray.init(
                address=join,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.WARNING,
            )
        except ConnectionError as exc:
            if not join:
                raise
            raise ServiceUnreachable("Ray cluster", join, _join_failure(exc)) from exc
        _restore_sigterm_handler(sigterm)
        try:
            yield
        finally:
            ray.shutdown()
    finally:
        if reaper is not None:
            stop_reaper(reaper)


def _join_failure(exc: ConnectionError) -> str:
    """Why joining a cluster failed, with the authentication hint when it may be the cause."""
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "no answer"
    if os.environ.get("RAY_AUTH_MODE", "").lower() == "token":
        return reason
    return (
        f"{reason}; a cluster started with token authentication (the default of `ray start` "
        "since Ray 2.59) also needs RAY_AUTH_MODE=token and its token in RAY_AUTH_TOKEN or "
        "RAY_AUTH_TOKEN_PATH (`ray get-auth-token` on the head prints it)"
    )


def _restore_sigterm_handler(handler: Any) -> None:
    """Give SIGTERM back to the Python handler set before ``ray.init`` (``sigterm_raises``).

    ``ray.init`` replaces it (with a handler that exits with status 15 and, at C++ level, one
    that prints a stack dump); only a Python callable is put back, in the main thread.
    """
    if callable(handler) and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)
