"""What the flow publishes at the end, as plain data: the ``gir-summary`` markdown (stages,
headline metrics, the champion decision, MLflow, validation and report links) and the rows of
the ``gir-per-family`` table, read from the stage outputs under the project folder."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from girml.core.paths import METRICS_DIR, MODEL_DIR, STUDY_DIR, TRAIN_METRICS, VALIDATION_DIR
from pipelines.redaction import redact

EVAL_METRICS = METRICS_DIR / "eval.json"  # evaluate stage outputs (girml.evaluation)
PER_FAMILY = METRICS_DIR / "per_family.csv"
VALIDATION_RESULT = VALIDATION_DIR / "result.json"
INTERPRETATION = Path("reports/interpretation/index.html")  # interpret stage (DESIGN.md)
STUDY_PAGE = STUDY_DIR / "index.html"  # study stage: the leaderboard
TABLE_MAX_ROWS = 60  # above this, the table artifact keeps only the model's rows


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


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


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
    from girml.artifacts.training_run import training_run
    from girml.tracking.runs import run_experiment_id
    from girml.tracking.store import tracking_uri

    try:  # metrics/train.json names the run; older model folders name it themselves
        run_id = training_run(root / MODEL_DIR, root / TRAIN_METRICS).mlflow_run_id
    except (FileNotFoundError, ValueError):
        return []
    if not run_id:
        return []
    uri = tracking_uri(root)
    experiment = run_experiment_id(uri, run_id) if uri.startswith(("http://", "https://")) else None
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
