"""The Prefect flow ``gir-pipeline``: one task per DVC stage, in DAG order.

Each task runs ``dvc repro --single-item <stage>`` in the project folder, so DVC's cache and
``dvc.lock`` stay the source of truth (an unchanged stage is skipped by DVC, not by Prefect);
its output streams line by line into the Prefect run log, except progress-bar refreshes (tqdm),
of which one line per :data:`PROGRESS_EVERY_S` seconds reaches the log. Stages named in
``params.yaml: orchestration.io_stages`` get Prefect retries, as does the final ``dvc push``.
At the end the flow publishes two artifacts: a markdown summary (key ``gir-summary``) and the
per-family table (key ``gir-per-family``).

Nothing secret leaves the machine through the flow: every logged line, error message and
artifact goes through :func:`redact` (URL userinfo and the values of secret-looking environment
variables are masked).
"""

from __future__ import annotations

import csv
import json
import os
import re
import sys
import time
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import requests
import yaml
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.schedules import Cron
from prefect.types.entrypoint import EntrypointType

from girml.config import (
    ConfigError,
    OrchestrationConfig,
    overlay_params,
    parse_section,
    read_params,
)
from girml.imageio import write_text
from girml.paths import METRICS_DIR, MODEL_DIR, STUDY_DIR, TRAIN_METRICS, VALIDATION_DIR
from girml.urls import mask_text, text_credentials
from pipelines.dag import stage_order
from pipelines.dvc_run import DvcError, stream_dvc

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment

FLOW_NAME = "gir-pipeline"
SUMMARY_KEY = "gir-summary"
TABLE_KEY = "gir-per-family"
PARAMS_FILE = "params.yaml"
EVAL_METRICS = METRICS_DIR / "eval.json"  # evaluate stage outputs (girml.evaluation)
PER_FAMILY = METRICS_DIR / "per_family.csv"
VALIDATION_RESULT = VALIDATION_DIR / "result.json"
INTERPRETATION = Path("reports/interpretation/index.html")  # interpret stage (DESIGN.md)
STUDY_PAGE = STUDY_DIR / "index.html"  # study stage: the leaderboard
TABLE_MAX_ROWS = 60  # above this, the table artifact keeps only the model's rows
ERROR_TAIL_LINES = 15
MASK = "***"
SKIPPED_MARK = "didn't change, skipping"  # DVC's message for an up-to-date stage
_SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|PRIVATE|API_?KEY|_KEY$", re.I)
_ERROR_LINE = re.compile(r"error|failed|exception", re.I)
# a tqdm refresh: "train:  40%|####      | 8/20 [00:02<00:03, 3.9step/s]" (or no total)
_PROGRESS_LINE = re.compile(r"\[(?:\d+:)?\d+:\d\d(?:<[^,\]]*)?, [^\]]*(?:/s|s/\w+)")
PROGRESS_EVERY_S = 60.0  # progress bars: at most one log line per this many seconds per stage
_OVERRIDE = re.compile(r"^(?P<key>[A-Za-z_][\w-]*(?:\.[\w-]+)+)=(?P<value>.*)$", re.S)


class StageFailed(RuntimeError):
    """A DVC stage (or ``dvc push``) exited non-zero; the message carries its error lines."""


# --------------------------------------------------------------------------- secrets


def redact(text: str, environ: Mapping[str, str] | None = None) -> str:
    """Mask URL userinfo and the values of secret-looking environment variables in ``text``.

    Args:
        text: any text about to be logged or published.
        environ: the environment whose secrets to mask; ``os.environ`` when None. A variable
            counts as secret when its name contains SECRET, TOKEN, PASSWORD, CREDENTIAL,
            PRIVATE or API_KEY, or ends in ``_KEY``; values shorter than 6 characters are
            left alone (masking them would mangle ordinary words).

    Returns:
        ``text`` with every secret value replaced by ``***`` and every URL masked by
        :func:`girml.urls.mask_text` (``scheme://user:pass@`` -> ``scheme://***@``, secret
        query values such as ``X-Amz-Signature`` -> ``***``).
    """
    env = os.environ if environ is None else environ
    secrets = sorted(
        (v for k, v in env.items() if _SECRET_NAME.search(k) and len(v) >= 6), key=len, reverse=True
    )
    for value in secrets:
        text = text.replace(value, MASK)
    return mask_text(text)


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


# --------------------------------------------------------------------------- overrides


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split an override in ``dvc exp run -S`` form into its key path and YAML value.

    Args:
        text: ``"section.key=value"``, e.g. ``"train.steps=200"``; nested keys are dotted
            (``"collect.split.val=0.2"``); the value is parsed as YAML (``200`` -> int,
            ``[1, 2]`` -> list, ``true`` -> bool).

    Raises:
        ConfigError: ``text`` is not of that form, or a URL in it carries credentials
            (``user:password@``, a token or signature in the query): overrides become
            flow-run parameters and params values, both stored; the message shows it masked.
    """
    shown = mask_text(repr(text))
    found = text_credentials(text)
    if found:
        raise ConfigError(
            f"override {shown}: credentials in a URL ({', '.join(found)}) are refused; put "
            "them in the environment, ~/.netrc or the AWS files"
        )
    match = _OVERRIDE.match(text.strip())
    if match is None:
        raise ConfigError(f"override {shown}: expected section.key=value, e.g. train.steps=200")
    try:
        value = yaml.safe_load(match["value"]) if match["value"] else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {shown}: value is not valid YAML ({exc})") from None
    return match["key"].split("."), value


def apply_overrides(params_path: str | Path, overrides: Sequence[str]) -> dict[str, Any]:
    """Set ``overrides`` in a params file, keeping its comments; validate before writing.

    The result is parsed section by section with :mod:`girml.config`, so an unknown key or a bad
    value fails here, naming the dotted key, and leaves the file untouched.

    Args:
        params_path: the project's ``params.yaml``.
        overrides: ``section.key=value`` strings (see :func:`parse_override`).

    Returns:
        The new params as plain data (as the stages will read them).

    Raises:
        ConfigError: a malformed override, an unknown section or key, or an invalid value.
    """
    path = Path(params_path)
    read_params(path)  # the file exists and is valid before we touch it
    changes = []
    for text in overrides:
        keys, value = parse_override(text)
        changes.append((f"override {text!r}", keys, value))
    new_text, plain = overlay_params(
        path.read_text(encoding="utf-8"), changes, source=f"{path} (overrides)"
    )
    write_text(path, new_text)
    return plain


# --------------------------------------------------------------------------- running DVC


def _subprocess_env() -> dict[str, str]:
    """The flow's environment for DVC: this interpreter's scripts first on PATH, no telemetry."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(
        DVC_NO_ANALYTICS="1",
        GX_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        PYTHONUNBUFFERED="1",
    )
    # tqdm reads TQDM_<ARG> defaults: fewer refreshes to read (run_dvc thins them further)
    env.setdefault("TQDM_MININTERVAL", "5")
    return env


def is_progress(line: str) -> bool:
    """True when ``line`` is a progress-bar refresh (tqdm's ``[elapsed<left, rate]`` part)."""
    return _PROGRESS_LINE.search(line) is not None


def error_summary(lines: Sequence[str]) -> str:
    """The lines that explain a failure: the output's tail, from its first error-like line.

    Args:
        lines: the last output lines of the failed command (stdout and stderr interleaved).

    Returns:
        The last :data:`ERROR_TAIL_LINES` lines, starting at the first one that mentions an
        error, a failure or an exception when there is one (e.g. ``error: collect.min_size:
        ...`` or ``validation FAILED: ...`` followed by DVC's own ``ERROR:`` line).
    """
    tail = [line for line in lines if line.strip()][-ERROR_TAIL_LINES:]
    first = next((i for i, line in enumerate(tail) if _ERROR_LINE.search(line)), 0)
    return "\n".join(tail[first:])


def run_dvc(args: Sequence[str], project_dir: Path, label: str) -> list[str]:
    """Run ``dvc ARGS`` in ``project_dir``, streaming its output to the Prefect run logger.

    Args:
        args: DVC arguments, e.g. ``["repro", "--single-item", "train"]``.
        project_dir: the DVC project (where ``dvc.yaml`` lives).
        label: prefix of each log line (the stage name).

    Progress-bar refreshes (:func:`is_progress`) are logged at most once per
    :data:`PROGRESS_EVERY_S` seconds, plus the last one, so a stage's progress takes a few
    lines of the Prefect log instead of one per step; they stay out of the error summary.

    Returns:
        Every output line (redacted), progress refreshes included.

    Raises:
        StageFailed: DVC exited non-zero; the message holds :func:`error_summary`.
    """
    logger = get_run_logger()
    lines: list[str] = []
    tail: deque[str] = deque(maxlen=4 * ERROR_TAIL_LINES)
    last_progress = float("-inf")
    unlogged: str | None = None  # the latest progress refresh not logged yet
    code = 0
    try:
        for raw in stream_dvc(args, project_dir, _subprocess_env()):
            line = redact(raw)
            if not line.strip():
                continue
            lines.append(line)
            if is_progress(line):
                now = time.monotonic()
                if now - last_progress < PROGRESS_EVERY_S:
                    unlogged = line
                    continue
                last_progress, unlogged = now, None
            else:
                tail.append(line)
            logger.info("[%s] %s", label, line.strip())
    except DvcError as exc:
        code = exc.returncode
    if unlogged is not None:
        logger.info("[%s] %s", label, unlogged.strip())
    if code != 0:
        raise StageFailed(f"stage {label!r} failed (exit code {code}):\n{error_summary(tail)}")
    return lines


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


# --------------------------------------------------------------------------- artifacts


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def headline_metrics(root: Path) -> list[tuple[str, str, Any]]:
    """``(file, key, value)`` of the headline metrics present under ``root``.

    From ``metrics/eval.json``: ``gir_score``, ``generalization_gap``, ``psnr_gain.<suite>`` and
    the model's harm keys (``harm_rate.<suite>``, ``harm.clean_psnr_y.<suite>``,
    ``harm.worst_family_gain``); from ``metrics/train.json``: the ``val.*`` numbers, ``steps``
    and ``train_seconds``.
    """
    rows: list[tuple[str, str, Any]] = []
    evaluation = _read_json(root / EVAL_METRICS)
    prefixes = ("psnr_gain.", "harm_rate.", "harm.")
    for key, value in evaluation.items():
        if key in ("gir_score", "generalization_gap") or key.startswith(prefixes):
            rows.append((EVAL_METRICS.name, key, value))
    train = _read_json(root / TRAIN_METRICS)
    for key, value in train.items():
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if numeric and (key.startswith("val.") or key in ("steps", "train_seconds")):
            rows.append((TRAIN_METRICS.name, key, value))
    return rows


def _experiment_id(uri: str, run_id: str) -> str | None:
    """The run's experiment id from a tracking server (3 s budget); None when unknown."""
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    try:
        response = requests.get(
            f"{uri.rstrip('/')}/api/2.0/mlflow/runs/get",
            params={"run_id": run_id},
            headers={"Authorization": f"Bearer {token}"} if token else None,
            auth=(user, os.environ.get("MLFLOW_TRACKING_PASSWORD", "")) if user else None,
            timeout=3,
        )
        response.raise_for_status()
        return str(response.json()["run"]["info"]["experiment_id"])
    except (requests.RequestException, ValueError, KeyError, TypeError):
        return None


def mlflow_lines(uri: str, run_id: str, experiment_id: str | None = None) -> list[str]:
    """Markdown lines pointing at an MLflow run.

    Args:
        uri: the tracking URI (``http(s)://`` server, ``sqlite:///`` file or other).
        run_id: the run.
        experiment_id: its experiment, for the server link (``/#/runs/<id>`` when None).

    Returns:
        For a server, a link ``<uri>/#/experiments/<exp>/runs/<id>`` (userinfo removed); for
        SQLite, the run id and the ``mlflow ui`` command that shows it.
    """
    if uri.startswith(("http://", "https://")):
        base = _without_userinfo(uri)
        page = f"experiments/{experiment_id}/runs/{run_id}" if experiment_id else f"runs/{run_id}"
        return [f"- run [`{run_id}`]({base}/#/{page})"]
    if uri.startswith("sqlite:"):
        return [
            f"- run `{run_id}` in `{uri}`",
            f"- browse: `mlflow ui --backend-store-uri {uri}`, then open the run",
        ]
    return [f"- run `{run_id}` at `{redact(uri)}`"]


def _mlflow_section(root: Path) -> list[str]:
    if not (root / MODEL_DIR).is_dir():
        return []
    from girml.models.store import training_run
    from girml.tracking.mlflow import tracking_uri

    try:  # metrics/train.json names the run; older model folders name it themselves
        run_id = training_run(root / MODEL_DIR, root / TRAIN_METRICS).mlflow_run_id
    except (FileNotFoundError, ValueError):
        return []
    if not run_id:
        return []
    uri = tracking_uri(root)
    experiment = _experiment_id(uri, run_id) if uri.startswith(("http://", "https://")) else None
    return ["", "## MLflow", "", *mlflow_lines(uri, run_id, experiment)]


def summary_markdown(root: Path, stages: Mapping[str, str]) -> str:
    """The ``gir-summary`` artifact: stages, headline metrics, champion decision and links.

    Args:
        root: the project folder; files of stages that have not run (yet) are left out.
        stages: stage name -> ``"ran"`` / ``"unchanged"``, in run order.

    Returns:
        Markdown, already passed through :func:`redact`.
    """
    lines = ["# gir-pipeline", "", "| stage | result |", "|---|---|"]
    lines += [f"| {name} | {result} |" for name, result in stages.items()]
    metrics = headline_metrics(root)
    if metrics:
        lines += ["", "## Headline metrics", "", "| file | metric | value |", "|---|---|---:|"]
        lines += [f"| {src} | `{key}` | {_fmt(value)} |" for src, key, value in metrics]
    champion = {
        k.removeprefix("champion."): v
        for k, v in _read_json(root / EVAL_METRICS).items()
        if k.startswith("champion.")
    }
    if champion:
        lines += ["", "## Champion decision", ""]
        for key, value in champion.items():
            if isinstance(value, str) and "\n" in value:
                lines.append(f"- **{key}**:")
                lines += [f"  - {part}" for part in value.splitlines() if part.strip()]
            else:
                lines.append(f"- **{key}**: {_fmt(value)}")
    lines += _mlflow_section(root)
    validation = _read_json(root / VALIDATION_RESULT)
    if "success" in validation:
        verdict = "passed" if validation["success"] else "FAILED"
        lines += ["", "## Data validation", "", f"- {verdict} (`{VALIDATION_RESULT}`)"]
    for title, page in (("Interpretation", INTERPRETATION), ("Study leaderboard", STUDY_PAGE)):
        if (root / page).is_file():
            lines += ["", f"## {title}", "", f"- [{page}]({(root / page).resolve().as_uri()})"]
    return redact("\n".join(lines) + "\n")


def _cell(value: str) -> float | str | None:
    if value == "":
        return None
    try:
        return round(float(value), 3)
    except ValueError:
        return value


def per_family_table(path: Path, max_rows: int = TABLE_MAX_ROWS) -> list[dict[str, Any]]:
    """Rows of ``metrics/per_family.csv`` for the table artifact (empty when absent).

    All rows when there are at most ``max_rows``, else only the model's (``method == model``);
    numbers rounded to 3 decimals, empty cells as None.
    """
    if not path.is_file():
        return []
    from girml.evaluation.harness import MODEL_METHOD

    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if len(rows) > max_rows:
        rows = [row for row in rows if row.get("method") == MODEL_METHOD][:max_rows]
    return [{key: _cell(value) for key, value in row.items()} for row in rows]


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


# --------------------------------------------------------------------------- flow


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
        retries = cfg.retries if stage in cfg.io_stages else 0
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
