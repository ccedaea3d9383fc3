"""``girml stack up|down|status``: a local service stack on loopback, for the full setup.

Three background services (:mod:`pipelines.stack_services`): an S3-compatible endpoint (moto),
an MLflow tracking server and a Prefect server. ``up`` starts them
(:mod:`pipelines.stack_lifecycle`), waits until each answers over HTTP, creates the bucket and
writes the variables to export to ``<state dir>/env`` (``set -a; . .stack/env; set +a``); in a
DVC project it also makes the bucket the default DVC remote (``.dvc/config.local``). ``down``
sends SIGTERM to each process group, then SIGKILL to what is left, and removes that remote.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from girml.cli_common import fail
from pipelines.dvc_run import DvcError, run_dvc
from pipelines.remote import add_s3_remote
from pipelines.stack_lifecycle import (
    ENV_FILE,
    StackError,
    exports,
    recorded_stack,
    stack_status,
    start_stack,
    stop_stack,
)
from pipelines.stack_services import Ports

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
    typer.echo(exports(env), nl=False)
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
        recorded = recorded_stack(state_dir)
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
