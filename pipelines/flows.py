"""The Prefect flow ``gir-pipeline``: one task per DVC stage, in DAG order.

Each task runs ``dvc repro --single-item <stage>`` in the project folder, so DVC's cache and
``dvc.lock`` stay the source of truth (an unchanged stage is skipped by DVC, not by Prefect);
its output streams line by line into the Prefect run log (:mod:`pipelines.dvc_log`). Stages
named in ``params.yaml: orchestration.io_stages`` (a ``foreach`` stage by its name before the
``@``: ``testset`` covers every ``testset@<set>``) get Prefect retries, as does the final
``dvc push``. Overrides are written into ``params.yaml`` first (:mod:`pipelines.overrides`). At
the end the flow publishes two artifacts (:mod:`pipelines.summary`): a markdown summary (key
``gir-summary``) and the per-family table (key ``gir-per-family``).

Nothing secret leaves the machine through the flow: every logged line, error message and
artifact goes through :func:`pipelines.redaction.redact`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.schedules import Cron
from prefect.types.entrypoint import EntrypointType

from girml.config import ConfigError, OrchestrationConfig, parse_section, read_params
from pipelines.dag import stage_order
from pipelines.dvc_log import run_dvc
from pipelines.overrides import apply_overrides
from pipelines.redaction import redact
from pipelines.summary import PER_FAMILY, per_family_table, summary_markdown

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment

FLOW_NAME = "gir-pipeline"
SUMMARY_KEY = "gir-summary"
TABLE_KEY = "gir-per-family"
PARAMS_FILE = "params.yaml"
SKIPPED_MARK = "didn't change, skipping"  # DVC's message for an up-to-date stage


def stage_retries(stage: str, cfg: OrchestrationConfig) -> int:
    """Prefect retries of ``stage``: ``cfg.retries`` for an I/O stage (``io_stages`` names it,
    or names the ``foreach`` stage ``name`` of ``name@item``), else 0."""
    io = stage in cfg.io_stages or stage.split("@", 1)[0] in cfg.io_stages
    return cfg.retries if io else 0


@task(name="apply-overrides", cache_policy=NO_CACHE)
def apply_overrides_task(project_dir: str, overrides: list[str]) -> None:
    """Write the flow's ``overrides`` into the project's ``params.yaml`` (validated)."""
    apply_overrides(Path(project_dir) / PARAMS_FILE, overrides)
    get_run_logger().info("params.yaml: set %s", redact(", ".join(overrides)))


@task(name="dvc-stage", cache_policy=NO_CACHE)
def run_stage(stage: str, project_dir: str) -> str:
    """``dvc repro --single-item STAGE``; returns ``"ran"`` or ``"unchanged"`` (DVC skipped it)."""
    lines = run_dvc(["repro", "--single-item", stage], Path(project_dir), stage)
    return "unchanged" if any(SKIPPED_MARK in line for line in lines) else "ran"


@task(name="dvc-push", cache_policy=NO_CACHE)
def dvc_push(project_dir: str) -> None:
    """``dvc push``: send the cached outputs to the project's default DVC remote."""
    run_dvc(["push"], Path(project_dir), "push")


@task(name="publish-artifacts", cache_policy=NO_CACHE)
def publish_artifacts(project_dir: str, stages: dict[str, str]) -> None:
    """Publish the ``gir-summary`` markdown and (when present) the ``gir-per-family`` table."""
    root = Path(project_dir)
    create_markdown_artifact(
        summary_markdown(root, stages),
        key=SUMMARY_KEY,
        description="gir-pipeline: stages, headline metrics, champion decision and links",
    )
    table = per_family_table(root / PER_FAMILY)
    if table:
        create_table_artifact(
            [{k: redact(v) if isinstance(v, str) else v for k, v in r.items()} for r in table],
            key=TABLE_KEY,
            description=f"{PER_FAMILY}: per (method, suite, family) means",
        )


@flow(name=FLOW_NAME)
def gir_pipeline(
    overrides: list[str] | None = None,
    push: bool | None = None,
    project_dir: str = ".",
) -> dict[str, str]:
    """Run every DVC stage of the project in DAG order, then publish a summary.

    Args:
        overrides: ``section.key=value`` params changes, as ``dvc exp run -S`` takes them
            (``"train.steps=200"``); written to ``params.yaml`` before any stage runs.
        push: ``dvc push`` at the end; None takes ``params.yaml: orchestration.push``.
        project_dir: the DVC project folder.

    Returns:
        Stage name -> ``"ran"`` or ``"unchanged"``.

    Raises:
        ConfigError: a bad override (the message names the key).
        StageFailed: a stage failed; the message holds its error lines.
    """
    root = str(Path(project_dir).resolve())
    if overrides:
        apply_overrides_task(root, list(overrides))
    raw = read_params(Path(root) / PARAMS_FILE).get("orchestration")
    cfg = parse_section(raw, "orchestration", OrchestrationConfig)
    results: dict[str, str] = {}
    for stage in stage_order(Path(root) / "dvc.yaml"):
        retries = stage_retries(stage, cfg)
        results[stage] = run_stage.with_options(
            task_run_name=stage, retries=retries, retry_delay_seconds=cfg.retry_delay_s
        )(stage, root)
    if cfg.push if push is None else push:
        dvc_push.with_options(retries=cfg.retries, retry_delay_seconds=cfg.retry_delay_s)(root)
    publish_artifacts(root, results)
    return results


def build_deployment(
    cfg: OrchestrationConfig, project_dir: str | Path, name: str | None = None
) -> RunnerDeployment:
    """The scheduled deployment of :func:`gir_pipeline` (not yet applied nor served).

    Args:
        cfg: ``params.yaml: orchestration`` (cron, timezone, deployment name).
        project_dir: the project the runs work in (stored as an absolute path parameter).
        name: deployment name; ``cfg.deployment`` when None.

    Raises:
        ConfigError: the cron expression or the timezone is invalid.
    """
    try:  # Prefect checks the cron when building the schedule, the timezone in the deployment
        return gir_pipeline.to_deployment(
            name=name or cfg.deployment,
            schedules=[Cron(cfg.cron, timezone=cfg.timezone)],
            parameters={"project_dir": str(Path(project_dir).resolve())},
            description="The GIR DVC pipeline, one Prefect task per stage (girml deploy).",
            tags=["girml"],
            entrypoint_type=EntrypointType.MODULE_PATH,
        )
    except ValueError as exc:
        raise ConfigError(
            f"orchestration.cron/timezone: invalid schedule {cfg.cron!r} in {cfg.timezone!r}"
            f" ({exc})"
        ) from None
