"""``girml stack up|down|status``: a local service stack on loopback, for the full setup.

Three background services, each in its own process group (``start_new_session``), with its log
in ``<state dir>/<name>.log`` and its pid in ``<state dir>/<name>.pid``:

- ``s3``: an S3-compatible endpoint (moto's server), with the bucket for DVC and MLflow;
- ``mlflow``: an MLflow tracking server, runs in ``<state dir>/mlflow.db``, artifacts proxied
  to ``s3://<bucket>/mlartifacts`` on that endpoint;
- ``prefect``: a Prefect server (API and UI), its database under ``<state dir>/prefect``; its UI
  calls the API on the server's own port.

``up`` waits until each answers over HTTP, creates the bucket and writes the variables to export
to ``<state dir>/env`` (``set -a; . .stack/env; set +a``). The AWS credentials there are moto's
dummy ones. ``down`` sends SIGTERM to each process group, then SIGKILL to what is left.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated

import psutil
import requests
import typer

from girml.cli import fail
from girml.imageio import write_text
from pipelines.dvc_run import DvcError, run_dvc
from pipelines.remote import add_s3_remote

HOST = "127.0.0.1"
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
OFFLINE = {
    "DO_NOT_TRACK": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
}
ENV_FILE = "env"
STATE_FILE = "stack.json"
LOG_TAIL_LINES = 20


@dataclass(frozen=True)
class Ports:
    """Loopback ports of the three services."""

    s3: int = 5000
    mlflow: int = 5001
    prefect: int = 4200


@dataclass(frozen=True)
class Service:
    """How to start one service and how to tell that it is up and that a process is it."""

    name: str
    port: int
    argv: tuple[str, ...]
    health_path: str
    marker: str  # substring of the command line that identifies the process as this service
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"


def stack_env(ports: Ports) -> dict[str, str]:
    """The variables a client exports to use the stack (endpoint, tracking, Prefect, creds)."""
    s3 = f"http://{HOST}:{ports.s3}"
    return {
        "AWS_ENDPOINT_URL": s3,
        **DUMMY_CREDENTIALS,
        "MLFLOW_TRACKING_URI": f"http://{HOST}:{ports.mlflow}",
        "MLFLOW_S3_ENDPOINT_URL": s3,
        "PREFECT_API_URL": f"http://{HOST}:{ports.prefect}/api",
    }


def services(state_dir: Path, ports: Ports, bucket: str) -> list[Service]:
    """The three services in start order (the S3 endpoint first: MLflow stores artifacts there)."""
    state = state_dir.resolve()
    py = sys.executable
    prefect_api = f"http://{HOST}:{ports.prefect}/api"
    mlflow_env = {
        "MLFLOW_S3_ENDPOINT_URL": f"http://{HOST}:{ports.s3}",
        **DUMMY_CREDENTIALS,
        # background jobs serve GenAI features only; they cost seven busy processes
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    return [
        Service(
            "s3",
            ports.s3,
            (py, "-m", "moto.server", "-H", HOST, "-p", str(ports.s3)),
            "/",
            "moto.server",
        ),
        Service(
            "mlflow",
            ports.mlflow,
            (
                *(py, "-m", "mlflow", "server", "--workers=1", f"--host={HOST}"),
                f"--port={ports.mlflow}",
                f"--backend-store-uri=sqlite:///{state / 'mlflow.db'}",
                f"--artifacts-destination=s3://{bucket}/mlartifacts",
            ),
            "/health",
            "mlflow server",
            mlflow_env,
        ),
        Service(
            "prefect",
            ports.prefect,
            (py, "-m", "prefect", "server", "start", "--host", HOST, "--port", str(ports.prefect)),
            "/api/health",
            "prefect server start",
            {
                "PREFECT_HOME": str(state / "prefect"),
                # the UI asks the browser to call PREFECT_UI_API_URL, which otherwise follows a
                # PREFECT_API_URL in the environment, else port 4200: a blank UI on other ports
                "PREFECT_UI_API_URL": prefect_api,
                "PREFECT_API_URL": prefect_api,
                "PREFECT_SERVER_API_HOST": HOST,
                "PREFECT_SERVER_API_PORT": str(ports.prefect),
            },
        ),
    ]


def _pid_file(state_dir: Path, name: str) -> Path:
    return state_dir / f"{name}.pid"


def _read_pid(state_dir: Path, name: str) -> int | None:
    try:
        return int(_pid_file(state_dir, name).read_text().strip())
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
    _pid_file(state_dir, service.name).write_text(f"{proc.pid}\n")
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


def _recorded(state_dir: Path) -> tuple[Ports, str] | None:
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


def _exports(env: Mapping[str, str]) -> str:
    """``export NAME=value`` lines (shell-quoted) for the env file and the terminal."""
    return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())


def _adopt_running(
    state_dir: Path, ports: Ports, bucket: str, echo: Callable[[str], None]
) -> tuple[Ports, str]:
    """The recorded ports and bucket when a service of an earlier ``up`` still runs, else the
    requested ones (saying so when they differ)."""
    recorded = _recorded(state_dir)
    if recorded is None or not any(
        service_process(_read_pid(state_dir, s.name), s.marker)
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
            _pid_file(state_dir, spec.name).unlink(missing_ok=True)
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
    running = {s.name: service_process(_read_pid(state_dir, s.name), s.marker) for s in specs}
    ports, notes = move_taken_ports(ports, movable, [n for n, proc in running.items() if proc])
    for note in notes:
        echo(note)
    specs = services(state_dir, ports, bucket)
    _check_ports_free([s for s in specs if running[s.name] is None])
    _write_state(state_dir, ports, bucket)
    _start_all(specs, running, state_dir, bucket, time.monotonic() + timeout_s, echo)
    env = stack_env(ports)
    write_text(state_dir / ENV_FILE, _exports(env))
    return env


def stop_stack(state_dir: Path) -> list[str]:
    """Stop every service with a pid file in ``state_dir``; returns the names stopped.

    Logs and data (``mlflow.db``, ``prefect/``) are kept, so the next ``up`` resumes; the env
    and state files are removed.
    """
    stopped = []
    for spec in services(state_dir, Ports(), "unused"):
        pid = _read_pid(state_dir, spec.name)
        if pid is not None and stop_group(pid, spec.marker):
            stopped.append(spec.name)
        _pid_file(state_dir, spec.name).unlink(missing_ok=True)
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
        pid = _read_pid(state_dir, spec.name)
        alive = service_process(pid, spec.marker) is not None
        url = urls.get(spec.name, "")
        rows.append((spec.name, pid, alive, url, bool(url) and alive and answers(url)))
    return rows


# --------------------------------------------------------------------------- command line

stack_app = typer.Typer(
    help="Local service stack on 127.0.0.1: S3 (moto), MLflow server, Prefect server.",
    no_args_is_help=True,
)
StateDirOpt = Annotated[Path, typer.Option("--dir", help="logs, pids, databases and env file")]


DVC_REMOTE = "stack"  # the DVC remote `up` sets in .dvc/config.local (not committed)


def point_dvc_at_stack(project_dir: Path, bucket: str, endpoint: str) -> str | None:
    """Make ``s3://<bucket>/dvc`` on the stack's endpoint the default DVC remote of the project.

    Written to ``.dvc/config.local`` (remote :data:`DVC_REMOTE`), so the committed
    ``.dvc/config`` keeps its remote; :func:`unpoint_dvc` undoes it. Returns the remote URL,
    or None when ``project_dir`` is not a DVC project.
    """
    if not (project_dir / ".dvc").is_dir():
        return None
    return add_s3_remote(
        f"{bucket}/dvc", project_dir, endpoint, DVC_REMOTE, default=True, force=True, local=True
    )


def unpoint_dvc(project_dir: Path) -> bool:
    """Remove :data:`DVC_REMOTE` (and the default it set) from ``.dvc/config.local``."""
    local = project_dir / ".dvc" / "config.local"
    if not local.is_file() or f'remote "{DVC_REMOTE}"' not in local.read_text():
        return False
    try:
        run_dvc(["remote", "remove", "--local", DVC_REMOTE], project_dir)
    except DvcError:
        return False
    return True


def _echo_stack(env: Mapping[str, str], state_dir: Path, bucket: str, remote: str | None) -> None:
    """Tell where DVC and MLflow store data, the variables to export and the UIs' URLs."""
    if remote is not None:
        typer.echo(
            f"DVC default remote: {DVC_REMOTE!r} -> {remote} (.dvc/config.local; "
            "`girml stack down` removes it)"
        )
    typer.echo(f"MLflow artifacts: s3://{bucket}/mlartifacts (via the tracking server)")
    typer.echo(f"\nexport these (or: set -a; . {state_dir / ENV_FILE}; set +a):")
    typer.echo(_exports(env), nl=False)
    ui = env["PREFECT_API_URL"].removesuffix("/api")
    typer.echo(f"Prefect UI: {ui}  MLflow UI: {env['MLFLOW_TRACKING_URI']}")


@stack_app.command("up")
def up(
    s3_port: Annotated[
        int | None,
        typer.Option(help=f"S3 endpoint (moto) port; default {Ports.s3}, else a free one"),
    ] = None,
    mlflow_port: Annotated[
        int | None,
        typer.Option(help=f"MLflow server port; default {Ports.mlflow}, else a free one"),
    ] = None,
    prefect_port: Annotated[
        int | None,
        typer.Option(help=f"Prefect server port; default {Ports.prefect}, else a free one"),
    ] = None,
    bucket: Annotated[str, typer.Option(help="S3 bucket for DVC and MLflow")] = "girml",
    state_dir: StateDirOpt = Path(".stack"),
    timeout: Annotated[float, typer.Option(help="seconds to wait for the services")] = 180.0,
    dvc_remote: Annotated[
        bool,
        typer.Option(help="make s3://BUCKET/dvc the default DVC remote (.dvc/config.local)"),
    ] = True,
    project_dir: Annotated[Path, typer.Option(help="the DVC project to point at the stack")] = (
        Path(".")
    ),
) -> None:
    """Start the stack in the background and write the variables to export to DIR/env.

    A default port that is taken moves to a free one (a port given as an option does not).
    In a DVC project, the stack's bucket becomes the default DVC remote; MLflow stores
    artifacts in the same bucket (s3://BUCKET/mlartifacts, through the tracking server).
    """
    chosen = {"s3": s3_port, "mlflow": mlflow_port, "prefect": prefect_port}
    ports = replace(Ports(), **{k: v for k, v in chosen.items() if v is not None})
    movable = [name for name, port in chosen.items() if port is None]
    try:
        env = start_stack(state_dir, ports, bucket, timeout, typer.echo, movable)
        recorded = _recorded(state_dir)
        used_bucket = recorded[1] if recorded else bucket
        remote = (
            point_dvc_at_stack(project_dir, used_bucket, env["AWS_ENDPOINT_URL"])
            if dvc_remote
            else None
        )
    except (StackError, ValueError) as exc:
        fail(str(exc), 1)
    except DvcError as exc:  # the stack runs; only the remote could not be set
        fail(f"the stack runs, but the DVC remote could not be set: {exc}", 1)
    _echo_stack(env, state_dir, used_bucket, remote)


@stack_app.command("down")
def down(
    state_dir: StateDirOpt = Path(".stack"),
    project_dir: Annotated[Path, typer.Option(help="the DVC project `up` pointed")] = Path("."),
) -> None:
    """Stop the stack's services (SIGTERM, then SIGKILL); logs and data are kept.

    Also removes the DVC remote that ``up`` set in ``.dvc/config.local``, so DVC falls back
    to the project's committed remote.
    """
    stopped = stop_stack(state_dir)
    typer.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
    if unpoint_dvc(project_dir):
        typer.echo(f"removed DVC remote {DVC_REMOTE!r} from .dvc/config.local")


@stack_app.command("status")
def status(state_dir: StateDirOpt = Path(".stack")) -> None:
    """Show each service's pid and whether it answers; exit 1 if one is down."""
    rows = stack_status(state_dir)
    for name, pid, alive, url, ok in rows:
        state = "up" if ok else ("running, not answering" if alive else "down")
        typer.echo(f"{name:8s} {state:24s} pid {pid or '-':<8} {url}")
    if not all(row[4] for row in rows):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``girml stack up|down|status`` to ``app``."""
    app.add_typer(stack_app, name="stack")
