"""Bringing the local stack up and down: start what does not run (each service in its own
process group, its log in ``<state dir>/<name>.log`` and its pid in ``<state dir>/<name>.pid``),
wait until each answers over HTTP, create the bucket, record the ports and write the variables
to export to ``<state dir>/env``; stop each process group again (SIGTERM, then SIGKILL)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
from collections.abc import Callable, Collection, Mapping
from pathlib import Path

import psutil

from girml.core.imageio import write_text
from pipelines.stack_processes import (
    answers,
    log_tail,
    move_taken_ports,
    pid_file,
    port_free,
    read_pid,
    service_process,
    stop_group,
)
from pipelines.stack_services import (
    DUMMY_CREDENTIALS,
    HOST,
    OFFLINE,
    Ports,
    Service,
    services,
    stack_env,
)

ENV_FILE = "env"
STATE_FILE = "stack.json"


class StackError(RuntimeError):
    """A service could not be started or did not answer in time."""


def _start(service: Service, state_dir: Path) -> int:
    env = {**os.environ, **OFFLINE, **service.env}
    with (state_dir / f"{service.name}.log").open("ab") as log:
        proc = subprocess.Popen(
            service.argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: `down` stops it and its children
        )
    pid_file(state_dir, service.name).write_text(f"{proc.pid}\n")
    return proc.pid


def _wait(service: Service, pid: int, state_dir: Path, deadline: float) -> None:
    url = service.url + service.health_path
    while not answers(url):
        if service_process(pid, service.marker) is None:
            tail = log_tail(state_dir / f"{service.name}.log")
            raise StackError(f"{service.name} exited before answering at {url}:\n{tail}")
        if time.monotonic() > deadline:
            tail = log_tail(state_dir / f"{service.name}.log")
            raise StackError(f"{service.name} did not answer at {url} in time:\n{tail}")
        time.sleep(0.5)


def create_bucket(endpoint: str, bucket: str) -> None:
    """Create ``bucket`` on the S3 endpoint with the dummy credentials (no-op if it exists)."""
    import boto3
    from botocore.exceptions import ClientError

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=DUMMY_CREDENTIALS["AWS_DEFAULT_REGION"],
    )
    try:
        client.create_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in (
            "BucketAlreadyOwnedByYou",
            "BucketAlreadyExists",
        ):
            raise


def recorded_stack(state_dir: Path) -> tuple[Ports, str] | None:
    """Ports and bucket of the stack last started in ``state_dir`` (None if unknown)."""
    try:
        state = json.loads((state_dir / STATE_FILE).read_text())
        return Ports(**state["ports"]), str(state["bucket"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def _write_state(state_dir: Path, ports: Ports, bucket: str) -> None:
    specs = services(state_dir, ports, bucket)
    state = {
        "ports": {"s3": ports.s3, "mlflow": ports.mlflow, "prefect": ports.prefect},
        "bucket": bucket,
        "services": {s.name: s.url + s.health_path for s in specs},
    }
    write_text(state_dir / STATE_FILE, json.dumps(state, indent=2) + "\n")


def exports(env: Mapping[str, str]) -> str:
    """``export NAME=value`` lines (shell-quoted) for the env file and the terminal."""
    return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())


def _adopt_running(
    state_dir: Path, ports: Ports, bucket: str, echo: Callable[[str], None]
) -> tuple[Ports, str]:
    """The recorded ports and bucket when a service of an earlier ``up`` still runs, else the
    requested ones (saying so when they differ)."""
    recorded = recorded_stack(state_dir)
    if recorded is None or not any(
        service_process(read_pid(state_dir, s.name), s.marker)
        for s in services(state_dir, *recorded)
    ):
        return ports, bucket
    if recorded != (ports, bucket):
        echo(f"the stack in {state_dir} already runs with {recorded[0]}, bucket {recorded[1]}")
    return recorded


def _check_ports_free(to_start: list[Service]) -> None:
    """Refuse to start services whose port is taken.

    Raises:
        StackError: the message names each taken port.
    """
    taken = [s for s in to_start if not port_free(s.port)]
    if taken:
        names = ", ".join(f"{s.name} port {s.port}" for s in taken)
        raise StackError(f"{HOST}: {names} already in use; pick others (girml stack up --help)")


def _start_group(
    group: list[Service],
    running: Mapping[str, psutil.Process | None],
    state_dir: Path,
    echo: Callable[[str], None],
    started: list[tuple[Service, int]],
) -> list[tuple[Service, int]]:
    """Start the group's services that do not run yet, appending each to ``started`` at once
    (so that a failure later in the group still stops it).

    Returns:
        ``(service, pid)`` of every service of the group.
    """
    pids = []
    for spec in group:
        proc = running[spec.name]
        if proc is None:
            pid = _start(spec, state_dir)
            started.append((spec, pid))
            echo(f"started {spec.name} (pid {pid}), log {state_dir / spec.name}.log")
        else:
            pid = proc.pid
            echo(f"{spec.name} already running (pid {pid})")
        pids.append((spec, pid))
    return pids


def _start_all(
    specs: list[Service],
    running: Mapping[str, psutil.Process | None],
    state_dir: Path,
    bucket: str,
    deadline: float,
    echo: Callable[[str], None],
) -> None:
    """Start what does not run (S3 first, then MLflow and Prefect side by side), wait for each
    to answer and create the bucket; on any failure stop again what this call started."""
    started: list[tuple[Service, int]] = []
    try:
        for group in (specs[:1], specs[1:]):  # mlflow and prefect boot side by side
            pids = _start_group(group, running, state_dir, echo, started)
            for spec, pid in pids:
                _wait(spec, pid, state_dir, deadline)
                echo(f"{spec.name} answers at {spec.url}")
            if group[0].name == "s3":
                create_bucket(group[0].url, bucket)
                echo(f"bucket s3://{bucket} ready")
    except BaseException:
        for spec, pid in started:
            stop_group(pid, spec.marker)
            pid_file(state_dir, spec.name).unlink(missing_ok=True)
        if not any(running.values()):
            (state_dir / STATE_FILE).unlink(missing_ok=True)
        raise


def start_stack(
    state_dir: Path,
    ports: Ports,
    bucket: str,
    timeout_s: float = 180.0,
    echo: Callable[[str], None] = print,
    movable: Collection[str] = (),
) -> dict[str, str]:
    """Start (or keep) the three services, create the bucket and write the env file.

    When services of an earlier ``up`` in ``state_dir`` still run, they are kept, with the
    ports and bucket recorded then; only the missing ones are started. On failure, the
    services this call started are stopped again.

    Args:
        state_dir: where logs, pids, databases and ``env`` go (created).
        ports: loopback ports; each must be free unless its service already runs, or its
            service is ``movable``.
        bucket: S3 bucket for DVC and MLflow artifacts.
        timeout_s: how long to wait for the services to answer.
        echo: progress messages.
        movable: services whose port may move to a free one when taken (the defaults).

    Returns:
        The variables written to ``<state_dir>/env``.

    Raises:
        StackError: a port is taken, or a service exited or did not answer in time.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    ports, bucket = _adopt_running(state_dir, ports, bucket, echo)
    specs = services(state_dir, ports, bucket)
    running = {s.name: service_process(read_pid(state_dir, s.name), s.marker) for s in specs}
    ports, notes = move_taken_ports(ports, movable, [n for n, proc in running.items() if proc])
    for note in notes:
        echo(note)
    specs = services(state_dir, ports, bucket)
    _check_ports_free([s for s in specs if running[s.name] is None])
    _write_state(state_dir, ports, bucket)
    _start_all(specs, running, state_dir, bucket, time.monotonic() + timeout_s, echo)
    env = stack_env(ports)
    write_text(state_dir / ENV_FILE, exports(env))
    return env


def stop_stack(state_dir: Path) -> list[str]:
    """Stop every service with a pid file in ``state_dir``; returns the names stopped.

    Logs and data (``mlflow.db``, ``prefect/``) are kept, so the next ``up`` resumes; the env
    and state files are removed.
    """
    stopped = []
    for spec in services(state_dir, Ports(), "unused"):
        pid = read_pid(state_dir, spec.name)
        if pid is not None and stop_group(pid, spec.marker):
            stopped.append(spec.name)
        pid_file(state_dir, spec.name).unlink(missing_ok=True)
    for name in (ENV_FILE, STATE_FILE):
        (state_dir / name).unlink(missing_ok=True)
    return stopped


def stack_status(state_dir: Path) -> list[tuple[str, int | None, bool, str, bool]]:
    """Per service: ``(name, pid, process alive, health URL, answers)``."""
    try:
        urls = json.loads((state_dir / STATE_FILE).read_text())["services"]
    except (FileNotFoundError, ValueError, KeyError):
        urls = {}
    rows = []
    for spec in services(state_dir, Ports(), "unused"):
        pid = read_pid(state_dir, spec.name)
        alive = service_process(pid, spec.marker) is not None
        url = urls.get(spec.name, "")
        rows.append((spec.name, pid, alive, url, bool(url) and alive and answers(url)))
    return rows
