"""Prefect verbs of ``girml``: ``girml flow`` (run the pipeline once) and ``girml deploy``.

``girml flow`` runs the ``gir-pipeline`` flow in this process: against ``PREFECT_API_URL`` when
set (a ``prefect server start`` or ``girml stack up``), else against a temporary local server
that Prefect starts and stops itself. ``girml deploy`` serves the flow as a deployment with the
schedule of ``params.yaml: orchestration`` (cron and timezone); it needs a running Prefect
server, where the deployment can also be triggered by hand (UI or ``prefect deployment run``).
It refuses a name that a work-pool deployment of the flow already has (docs/operations.md: the
team's ``prefect deploy ... --pool``): serving it would take that deployment over, and stopping
``girml deploy`` pauses what it served, so the team's schedule would silently stop.
Prefect is imported inside the commands only, so other verbs never pay for it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from girml.cli_common import fail
from girml.config import ConfigError, load_section

NO_API = (
    "no Prefect API configured: start a server with `prefect server start` (or `girml stack up`)"
    " and export PREFECT_API_URL=http://127.0.0.1:4200/api"
)

EPHEMERAL_TIMEOUT_VAR = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
ProjectOpt = Annotated[Path, typer.Option("--project-dir", help="the DVC project folder")]


def prefect_api_url() -> str:
    """The reachable Prefect API URL (``PREFECT_API_URL`` or the active Prefect profile).

    Raises:
        ConnectionError: none is configured, or it does not answer ``/health`` within 5 s.
    """
    import requests
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        raise ConnectionError(NO_API)
    try:
        requests.get(f"{url.rstrip('/')}/health", timeout=5).raise_for_status()
    except requests.RequestException as exc:
        from pipelines.redaction import redact

        raise ConnectionError(
            redact(
                f"the Prefect API at {url} is not reachable ({type(exc).__name__}); start it "
                "with `prefect server start` (or `girml stack up`) or fix PREFECT_API_URL"
            )
        ) from None
    return url


def pool_deployment(name: str) -> str | None:
    """The work pool of the server's deployment ``gir-pipeline/<name>`` (None: absent or served).

    A served deployment (``girml deploy``, ``prefect.serve``) has no work pool; one created by
    ``prefect deploy --pool`` has, and is run by that pool's workers.
    """
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    from pipelines.flows import FLOW_NAME

    with get_client(sync_client=True) as client:
        try:
            stored = client.read_deployment_by_name(f"{FLOW_NAME}/{name}")
        except ObjectNotFound:
            return None
    return stored.work_pool_name or None


def deploy(
    params: Annotated[
        Path | None, typer.Option("--params", "-p", help="default: PROJECT_DIR/params.yaml")
    ] = None,
    project_dir: ProjectOpt = Path("."),
    name: Annotated[
        str | None, typer.Option(help="deployment name; default orchestration.deployment")
    ] = None,
) -> None:
    """Serve gir-pipeline on the orchestration.cron schedule (needs a Prefect server).

    Blocks, polling for scheduled and manually triggered runs, until interrupted.
    """
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per Prefect API call
    try:
        cfg = load_section(params or project_dir / "params.yaml", "orchestration")
        api = prefect_api_url()
        from prefect import serve

        from pipelines.flows import build_deployment
        from pipelines.redaction import redact

        deployment = build_deployment(cfg, project_dir, name)
        pool = pool_deployment(deployment.name)
    except (ConfigError, ConnectionError) as exc:
        fail(str(exc), 2)
    if pool is not None:
        fail(
            f"gir-pipeline/{deployment.name} is the deployment of work pool {pool!r} on {api}; "
            "`girml deploy` would take it over (and pause it when stopped): pick another "
            "--name or orchestration.deployment",
            2,
        )
    typer.echo(
        redact(
            f"serving gir-pipeline/{deployment.name} on {api}: cron {cfg.cron!r} ({cfg.timezone})"
        )
    )
    serve(deployment)


def flow_run(
    override: Annotated[
        list[str] | None,
        typer.Option(
            "--override", "-S", help="params change as `dvc exp run -S` takes it: train.steps=200"
        ),
    ] = None,
    push: Annotated[
        bool | None,
        typer.Option("--push/--no-push", help="dvc push at the end; default orchestration.push"),
    ] = None,
    project_dir: ProjectOpt = Path("."),
) -> None:
    """Run the gir-pipeline Prefect flow once: every DVC stage in DAG order, then a summary.

    Without PREFECT_API_URL, Prefect starts a temporary server for the run; its 20 s default
    start-up timeout is raised to 120 s (small machines), unless set in the environment. With
    it, a server that does not answer ``/health`` within 5 s stops the command at once.
    """
    os.environ.setdefault(EPHEMERAL_TIMEOUT_VAR, "120")  # read when Prefect is first imported
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per Prefect API call
    from pipelines.flows import gir_pipeline
    from pipelines.overrides import parse_override

    try:  # before Prefect stores them as the flow run's parameters
        for text in override or []:
            parse_override(text)
    except ConfigError as exc:
        fail(str(exc), 2)
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():  # a configured server that is down: one line, at once
        try:
            prefect_api_url()
        except ConnectionError as exc:
            fail(str(exc), 2)  # as `girml deploy` does
    state = gir_pipeline(
        overrides=override or None, push=push, project_dir=str(project_dir), return_state=True
    )
    if not state.is_completed():
        fail(state.message or state.name, 1)
    typer.echo(f"gir-pipeline {state.name.lower()}: {state.result()}")


def register(app: typer.Typer) -> None:
    """Add ``girml flow`` and ``girml deploy`` to ``app``."""
    app.command("flow")(flow_run)
    app.command("deploy")(deploy)
